"""How a study and a trained model are named for people: one spelling each, wherever they appear."""

from __future__ import annotations

from collections.abc import Sequence


def default_name(dataset: str, archs: Sequence[str], synthetic: bool) -> str:
    """The experiment folder a study gets without --name: 'nmnist-cnn-scnn', with '-synthetic' on synthetic data."""
    return f"{dataset}-{'-'.join(archs)}" + ("-synthetic" if synthetic else "")


def model_on_data(arch: str, dataset: str, synthetic: bool) -> str:
    """'scnn on nmnist', with ' (synthetic data)' when it is: how titles, captions and messages name a model."""
    return f"{arch} on {dataset}" + (" (synthetic data)" if synthetic else "")
