"""Event streams -> frames of T time bins, made per batch from the shared event store.

Frames are never stored: T and the frame size are searched, and a frame cache per setting would
re-read every raw file for every new T (and weigh 115 KB a sample at T=25 on N-MNIST). Instead
a batch's events are binned with one `np.bincount`, which reproduces tonic's
`Downsample` + `ToFrame(n_time_bins=T)` exactly (tests/test_data.py compares them) at thousands
of samples a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tonic.transforms import Compose, Downsample, ToFrame

from study.data.events import EventStore
from study.data.sources import Source


@dataclass(frozen=True)
class FrameSpec:
    """How events become frames."""

    n_time_bins: int  # T
    size: int = 0  # frames downsampled to size x size; 0 keeps the sensor's size


def frame_transform(source: Source, spec: FrameSpec) -> Compose:
    """The same conversion with tonic's per-sample transforms: the reference the batched one is tested against."""
    width, height, polarities = source.shape
    transforms = []
    sensor_size = source.shape
    if spec.size and (spec.size, spec.size) != (width, height):
        transforms.append(Downsample(sensor_size=source.shape, target_size=(spec.size, spec.size)))
        sensor_size = (spec.size, spec.size, polarities)
    transforms.append(ToFrame(sensor_size=sensor_size, n_time_bins=spec.n_time_bins))
    return Compose(transforms)


def batch_frames(store: EventStore, samples: np.ndarray, spec: FrameSpec, source: Source) -> torch.Tensor:
    """Event counts `[B, T, P, H, W]` (float32) of the store's `samples`."""
    channels, height, width = source.input_shape(spec.size)
    bins = spec.n_time_bins
    events, counts = store.read(samples)
    owner = np.repeat(np.arange(len(samples)), counts)  # which sample each event belongs to
    # tonic's ToFrame(n_time_bins=T): bins of (last - first) // T microseconds from the first event,
    # an event in bin (t - first) // window; events past T whole windows are dropped. t starts at 0.
    last = np.zeros(len(samples), dtype=np.int64)
    filled = counts > 0
    last[filled] = events["t"][np.cumsum(counts)[filled] - 1]
    window = (last // bins)[owner]
    step = np.floor_divide(events["t"], window, out=np.full(len(events), bins, dtype=np.int64), where=window > 0)
    x, y = events["x"].astype(np.int64), events["y"].astype(np.int64)
    sensor_width, sensor_height, _ = source.shape
    if (width, height) != (sensor_width, sensor_height):  # tonic's Downsample: scale, then truncate
        x = (x * (width / sensor_width)).astype(np.int64)
        y = (y * (height / sensor_height)).astype(np.int64)
    # The store holds checked events only (study.data.event_checks); this keeps even a damaged one from
    # putting an event into another sample's frames, which a flat index past this sample's end would.
    keep = (step >= 0) & (step < bins) & (x < width) & (y < height) & (events["p"] < channels)
    flat = (((owner * bins + step) * channels + events["p"]) * height + y) * width + x
    counts = np.bincount(flat[keep], minlength=len(samples) * bins * channels * height * width)
    return torch.from_numpy(counts.astype(np.float32)).view(len(samples), bins, channels, height, width)


class FrameDataset(torch.utils.data.Dataset):
    """(frames float32 counts, labels) of the samples `indices` of an event store.

    Indexed by a list of positions it returns a whole batch, `[B, T, P, H, W]` and `[B]`, binned at
    once (the loader asks for batches: study.loop.make_loader); by one position, one sample.
    """

    def __init__(self, store: EventStore, indices: np.ndarray, targets: np.ndarray, spec: FrameSpec, source: Source):
        self.store, self.indices, self.spec, self.source = store, np.asarray(indices, dtype=np.int64), spec, source
        self.targets = torch.as_tensor(targets, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, positions: int | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(positions, int):
            frames, targets = self[[positions]]
            return frames[0], targets[0]
        return batch_frames(self.store, self.indices[positions], self.spec, self.source), self.targets[positions]
