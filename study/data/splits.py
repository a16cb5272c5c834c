"""Which samples a study uses: a fixed validation split and class-balanced subsets."""

from __future__ import annotations

import numpy as np

# The validation split is the same for every study and every --seed, so that spiking and
# conventional studies are compared on the very same held-out samples.
SPLIT_SEED = 20240607


def _shuffled_per_class(targets: np.ndarray, indices: np.ndarray, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    classes = np.unique(targets[indices])
    return [rng.permutation(indices[targets[indices] == label]) for label in classes]


def train_val_indices(targets: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of a training set into (train, validation) indices, the same on every call."""
    all_indices = np.arange(len(targets))
    train, val = [], []
    for members in _shuffled_per_class(targets, all_indices, SPLIT_SEED):
        n_val = max(1, round(len(members) * val_fraction)) if len(members) > 1 else 0
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def balanced_subset(targets: np.ndarray, indices: np.ndarray, limit: int | None) -> np.ndarray:
    """At most `limit` of `indices`, drawn round-robin over the classes (all of them when limit is None)."""
    if limit is None or limit >= len(indices):
        return indices
    per_class = _shuffled_per_class(targets, indices, SPLIT_SEED + 1)
    longest = max(len(members) for members in per_class)
    # Round-robin: the first sample of every class, then the second of every class, ...
    interleaved = [members[rank] for rank in range(longest) for members in per_class if rank < len(members)]
    return np.sort(np.asarray(interleaved[:limit], dtype=np.int64))
