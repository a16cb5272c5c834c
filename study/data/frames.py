"""Event streams -> frames of T time bins, converted once and cached on disk for every trial.

T is searched, so many trials ask for the same frames: the first converts, the others wait on a
file lock and then read the cache (memory-mapped, so no trial holds a data set in RAM). The cache
key covers everything that changes the content (tonic's DiskCachedDataset does not notice a
changed transform, tonic issue #160).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from tonic.transforms import Compose, Downsample, ToFrame

from study.data.sources import RawSplit, Source
from study.errors import UserError
from study.files import replaced_atomically

# Bump when the conversion below changes: old caches then stop matching.
FRAME_FORMAT = 1


@dataclass(frozen=True)
class FrameSpec:
    """How events become frames."""

    n_time_bins: int  # T
    size: int = 0  # frames downsampled to size x size; 0 keeps the sensor's size


def frame_transform(source: Source, spec: FrameSpec) -> Compose:
    """tonic transforms: optional spatial downsampling, then T equal time bins of event counts."""
    width, height, polarities = source.shape
    transforms = []
    sensor_size = source.shape
    if spec.size and (spec.size, spec.size) != (width, height):
        transforms.append(Downsample(sensor_size=source.shape, target_size=(spec.size, spec.size)))
        sensor_size = (spec.size, spec.size, polarities)
    transforms.append(ToFrame(sensor_size=sensor_size, n_time_bins=spec.n_time_bins))
    return Compose(transforms)


def cache_key(source: Source, split: RawSplit, indices: np.ndarray, spec: FrameSpec) -> str:
    """A digest of every input that changes the cached frames."""
    content = {
        "format": FRAME_FORMAT,
        "dataset": source.name,
        "folder": str(split.folder.resolve()),
        "indices": hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest(),
        "n_time_bins": spec.n_time_bins,
        "size": spec.size,
        "dtype": source.frame_dtype,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:20]


def cached_frames(source: Source, split: RawSplit, indices: np.ndarray, spec: FrameSpec, cache_dir: Path) -> np.ndarray:
    """Frames `[N, T, P, H, W]` of the samples `indices`, memory-mapped from the cache (built if absent)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{source.name}-{cache_key(source, split, indices, spec)}.npy"
    with FileLock(str(path) + ".lock"):
        if not path.exists():
            # Left by a process killed mid-write; holding the lock, nobody else is writing them.
            for stale in cache_dir.glob(f"{path.name}.partial-*"):
                stale.unlink()
            _convert(source, split, indices, spec, path)
    return np.load(path, mmap_mode="r")


def _convert(source: Source, split: RawSplit, indices: np.ndarray, spec: FrameSpec, path: Path) -> None:
    transform = frame_transform(source, spec)
    channels, height, width = source.input_shape(spec.size)
    dtype = np.dtype(source.frame_dtype)
    ceiling = np.iinfo(dtype).max
    with replaced_atomically(path) as partial:
        frames = np.lib.format.open_memmap(
            partial, mode="w+", dtype=dtype, shape=(len(indices), spec.n_time_bins, channels, height, width)
        )
        for row, index in enumerate(indices):
            try:
                events, _ = split.dataset[int(index)]
                frames[row] = np.minimum(transform(events), ceiling)
            except Exception as error:  # whatever a damaged file makes the reader raise, name the file
                raise UserError(
                    f"Cannot read {split.sample_file(int(index))} ({type(error).__name__}: {error}). The file is "
                    f"truncated or corrupt: restore it (download the dataset again) and rerun."
                ) from None
        frames.flush()
        del frames


class FrameDataset(torch.utils.data.Dataset):
    """(frames [T, P, H, W] float32 counts, label) pairs read from a memory-mapped frame cache."""

    def __init__(self, frames: np.ndarray, targets: np.ndarray):
        self.frames = frames
        self.targets = torch.as_tensor(targets, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.frames[index].astype(np.float32)), self.targets[index]
