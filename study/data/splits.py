"""Which samples a study uses: a fixed validation split and class-balanced subsets."""

from __future__ import annotations

import numpy as np

from study.errors import UserError

# The validation split is the same for every study and every --seed, so that spiking and
# conventional studies are compared on the very same held-out samples.
SPLIT_SEED = 20240607


def check_limit(flag: str, limit: int | None, classes: int, dataset: str) -> None:
    """A class-balanced subset needs a sample of every class: a smaller `limit` (given as `flag`) is a UserError."""
    if limit is not None and limit < classes:
        raise UserError(
            f"{flag} {limit} is smaller than the {classes} classes of {dataset}: some classes would have no "
            f"sample, and an accuracy over so few samples says nothing. Give at least {classes}."
        )


def _shuffled_per_class(targets: np.ndarray, indices: np.ndarray, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    classes = np.unique(targets[indices])
    return [rng.permutation(indices[targets[indices] == label]) for label in classes]


def train_val_indices(targets: np.ndarray, val_fraction: float, groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split a training set into (train, validation) indices, the same on every call: by `groups` when given
    (whole users held out, see `by_group`), else stratified by class."""
    if groups is not None:
        return by_group(targets, groups, val_fraction)
    all_indices = np.arange(len(targets))
    train, val = [], []
    for members in _shuffled_per_class(targets, all_indices, SPLIT_SEED):
        n_val = max(1, round(len(members) * val_fraction)) if len(members) > 1 else 0
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def by_group(targets: np.ndarray, groups: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Validation = every sample of a few whole groups (DVS Gesture's users), the rest training.

    DVS Gesture's test users (24-29) are disjoint from its training users; a validation split by class
    alone shares users with training and rewards networks that memorise users. Held-out users make
    validation a fair stand-in for the test split. Every user records every gesture, so a user's samples
    are class-balanced already. Users are drawn in a fixed order until they hold `val_fraction` of the
    samples (at least one user, never all).
    """
    users = np.random.default_rng(SPLIT_SEED).permutation(np.unique(groups))
    held_out, share = [], 0.0
    for user in users[:-1]:
        if held_out and share >= val_fraction:
            break
        held_out.append(user)
        share += float(np.mean(groups == user))
    validation = np.isin(groups, held_out)
    return np.flatnonzero(~validation), np.flatnonzero(validation)


def balanced_subset(targets: np.ndarray, indices: np.ndarray, limit: int | None) -> np.ndarray:
    """At most `limit` of `indices`, drawn round-robin over the classes (all of them when limit is None)."""
    if limit is None or limit >= len(indices):
        return indices
    per_class = _shuffled_per_class(targets, indices, SPLIT_SEED + 1)
    longest = max(len(members) for members in per_class)
    # Round-robin: the first sample of every class, then the second of every class, ...
    interleaved = [members[rank] for rank in range(longest) for members in per_class if rank < len(members)]
    return np.sort(np.asarray(interleaved[:limit], dtype=np.int64))
