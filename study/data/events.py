"""Every event of a split, decoded once into one compact store on disk that all trials share.

Raw files (N-MNIST's 5-byte records, DVS Gesture's `.npy` tables) are read once per split and data
folder, by whichever process gets there first (the study's driver, before any trial); the others
wait on a file lock, then read the store. Frames for any T or frame size are made from it in
batches (study.data.frames), so changing T never re-reads a raw file. At 7 bytes an event the
N-MNIST training split is about 1.3 GB on disk; a batch's events are read with `pread` into the
trial's memory and dropped after binning, so a trial's memory does not grow with the data set
(the OS page cache, shared by every trial on the node, keeps the hot parts).

Layout under `<data root>/cache/`: `<name>-events.bin` (structured records x, y, p, t with t in
microseconds from the sample's first event) and `<name>-offsets.npy` (sample i is
`events[offsets[i]:offsets[i + 1]]`). The offsets file is renamed into place last: it marks a
complete store.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from study.data.sources import RawSplit, Source
from study.errors import UserError
from study.files import replaced_atomically

# Bump when the layout or the decoding below changes: old stores then stop matching.
# 2: every recording checked against the sensor, polarities, time order (study.data.event_checks).
EVENT_FORMAT = 2


def event_dtype(source: Source) -> np.dtype:
    """Packed records: one byte a coordinate where the sensor allows (both sensors here are <= 128)."""
    width, height, _ = source.shape
    coordinate = "u1" if max(width, height) <= 256 else "<u2"
    return np.dtype([("x", coordinate), ("y", coordinate), ("p", "u1"), ("t", "<i4")])


@dataclass(frozen=True)
class EventStore:
    """The events of every sample of one split, read from disk on demand."""

    path: Path  # the packed records
    dtype: np.dtype
    offsets: np.ndarray  # [samples + 1] int64: sample i is records offsets[i] to offsets[i + 1]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def read(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The events of `samples`, concatenated, and how many belong to each sample."""
        starts, ends = self.offsets[samples], self.offsets[samples + 1]
        size = self.dtype.itemsize
        # pread takes no file position, so worker processes forked from one another never interfere.
        with open(self.path, "rb") as file:
            chunks = [os.pread(file.fileno(), int(end - start) * size, int(start) * size) for start, end in zip(starts, ends)]
        return np.frombuffer(b"".join(chunks), dtype=self.dtype), ends - starts


def store_name(source: Source, split: RawSplit) -> str:
    content = {"format": EVENT_FORMAT, "dataset": source.name, "folder": str(split.folder.resolve()), "samples": len(split.targets)}
    return f"{source.name}-{hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:20]}"


def event_store(source: Source, split: RawSplit, cache_dir: Path) -> EventStore:
    """The split's event store, decoded from the raw files first if no complete one exists."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    name = store_name(source, split)
    events_path, offsets_path = cache_dir / f"{name}-events.bin", cache_dir / f"{name}-offsets.npy"
    with FileLock(str(cache_dir / f"{name}.lock")):
        if not offsets_path.exists():
            # Left by a process killed mid-write; holding the lock, nobody else is writing them.
            for stale in cache_dir.glob(f"{name}-*.partial-*"):
                stale.unlink()
            _decode(source, split, events_path, offsets_path)
    return EventStore(events_path, event_dtype(source), np.load(offsets_path))


def _decode(source: Source, split: RawSplit, events_path: Path, offsets_path: Path) -> None:
    dtype = event_dtype(source)
    offsets = np.zeros(len(split.targets) + 1, dtype=np.int64)
    with replaced_atomically(events_path) as partial, open(partial, "wb") as out:
        for index in range(len(split.targets)):
            records = _read(source, split, index, dtype)
            out.write(records.tobytes())
            offsets[index + 1] = offsets[index] + len(records)
        out.flush()
        os.fsync(out.fileno())
    with replaced_atomically(offsets_path) as partial:
        with open(partial, "wb") as out:
            np.save(out, offsets)


def _read(source: Source, split: RawSplit, index: int, dtype: np.dtype) -> np.ndarray:
    """One sample's events as packed records, or a UserError naming the damaged file."""
    try:
        events, _ = split.dataset[index]
        records = np.empty(len(events), dtype=dtype)
        for field in ("x", "y", "p"):
            records[field] = events[field]
        times = events["t"].astype(np.int64)
        relative = times - times[0] if len(times) else times
        if len(times) and np.abs(relative).max() >= 2**31:
            raise ValueError("the recording spans more than 35 minutes of microseconds")
        records["t"] = relative
        return records
    except Exception as error:  # whatever a damaged file makes the reader raise, name the file
        raise UserError(
            f"Cannot read {split.sample_file(index)} ({type(error).__name__}: {error}). The file is "
            f"truncated or corrupt: restore it (download the dataset again, or remove it) and rerun."
        ) from None
