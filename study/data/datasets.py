"""A study's samples: the fixed splits of a raw dataset as tensors a DataLoader can batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from study.config import StudySettings
from study.data.events import event_store
from study.data.frames import FrameDataset, FrameSpec
from study.data.sources import SYNTHETIC_MARKER, RawSplit, Source
from study.data.splits import balanced_subset, train_val_indices


def data_root(data_dir: Path, synthetic: bool) -> Path:
    """Synthetic data lives in its own folder, so it never mixes with (or overwrites) a real download."""
    return Path(data_dir) / "synthetic" if synthetic else Path(data_dir)


def is_synthetic(root: Path) -> bool:
    return (Path(root) / SYNTHETIC_MARKER).exists()


def _materialize(source: Source, split: RawSplit, indices: np.ndarray, frames: FrameSpec, root: Path) -> Dataset:
    targets = split.targets[indices]
    if source.kind == "static":
        # MNIST: 60000 x 28 x 28 bytes, held as bytes (47 MB, not 188 MB of floats); scaled by the encoder.
        images = split.dataset.data[torch.as_tensor(indices)].unsqueeze(1)
        return TensorDataset(images, torch.as_tensor(targets))
    return FrameDataset(event_store(source, split, root / "cache"), indices, targets, frames, source)


def train_val_datasets(source: Source, settings: StudySettings, frames: FrameSpec) -> tuple[Dataset, Dataset]:
    """The training and validation sets (within `settings`' limits), both held out of the dataset's training split."""
    root = data_root(settings.data_dir, settings.synthetic)
    split = source.open(root, train=True)
    train, val = train_val_indices(split.targets, settings.val_fraction, split.groups)
    train = balanced_subset(split.targets, train, settings.train_limit)
    val = balanced_subset(split.targets, val, settings.val_limit)
    return _materialize(source, split, train, frames, root), _materialize(source, split, val, frames, root)


def final_test_set(source: Source, settings: StudySettings, frames: FrameSpec) -> Dataset:
    """The test split, within `settings.test_limit` (used once, for the best trial)."""
    root = data_root(settings.data_dir, settings.synthetic)
    split = source.open(root, train=False)
    indices = balanced_subset(split.targets, np.arange(len(split.targets)), settings.test_limit)
    return _materialize(source, split, indices, frames, root)
