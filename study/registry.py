"""Names -> things: datasets, architectures and search spaces, as plain dicts.

`python -m study.run nmnist --arch scnn` is a lookup here; an unknown name is a UserError
that lists the valid ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

import search_spaces.dvsgesture
import search_spaces.mnist
import search_spaces.nmnist
from study.config import Hyperparams
from study.data.sources import DVSGESTURE_SOURCE, MNIST_SOURCE, NMNIST_SOURCE, Source
from study.data.synthetic import write_dvsgesture, write_mnist, write_nmnist
from study.errors import lookup
from study.models import CNN, Model, SpikingCNN, SpikingLSTM


@dataclass(frozen=True)
class DatasetEntry:
    source: Source
    compared: tuple[str, ...]  # the architectures `python -m study.run DATASET` compares
    write_synthetic: Callable[[Path, int, int], None]  # (root, train per class, test per class)
    synthetic_per_class: tuple[int, int]  # (train, test) samples per class of --synthetic data


DATASETS: dict[str, DatasetEntry] = {
    "mnist": DatasetEntry(MNIST_SOURCE, ("cnn", "scnn"), write_mnist, (300, 50)),
    "nmnist": DatasetEntry(NMNIST_SOURCE, ("cnn", "scnn"), write_nmnist, (300, 50)),
    # The seed paired the spiking CNN with the spiking LSTM on DVS Gesture.
    "dvsgesture": DatasetEntry(DVSGESTURE_SOURCE, ("cnn", "scnn", "slstm"), write_dvsgesture, (98, 24)),
}

# Every architecture runs on every dataset: (input shape of one step, classes, hyperparameters) -> module.
ARCHITECTURES: dict[str, type[Model]] = {
    "cnn": CNN,
    "scnn": SpikingCNN,
    "slstm": SpikingLSTM,
}


@dataclass(frozen=True)
class SearchSpace:
    define: Callable  # Optuna define-by-run: (trial, fixed values, upper limits) -> constants
    first_trial: dict  # settings known to learn (Hyperparams fields), evaluated before the sampler proposes any


SEARCH_SPACES: dict[tuple[str, str], SearchSpace] = {
    (dataset, arch): SearchSpace(getattr(module, arch), module.FIRST_TRIALS[arch])
    for dataset, module in {
        "mnist": search_spaces.mnist,
        "nmnist": search_spaces.nmnist,
        "dvsgesture": search_spaces.dvsgesture,
    }.items()
    for arch in ARCHITECTURES
}


@dataclass(frozen=True)
class Preset:
    """Hyperparameters a study fixes by name (`--preset`); the search tunes the rest. Capacity applies to
    the CNN and the spiking CNN alike, so the two are compared at the same capacity; the spiking LSTM
    takes what applies to it (time steps, readout, population, frame size)."""

    dataset: str
    about: str
    values: dict


# For GPU users, in the spirit of SpikingJelly's networks (conv-BN-LIF-pool blocks, a population vote).
PRESETS: dict[str, Preset] = {
    "mnist-csnn": Preset(
        "mnist",
        "SpikingJelly's convolutional SNN for (Fashion-)MNIST: 2 blocks of 48 and 128 channels, 3x3, BatchNorm, T=8",
        {"blocks": 2, "width": 4.0, "kernel_size": 3, "batch_norm": True, "pooling": "max", "num_steps": 8},
    ),
    "nmnist-csnn": Preset(
        "nmnist",
        "the same network on N-MNIST's 34x34 events: 2 blocks of 48 and 128 channels, 3x3, BatchNorm, T=16",
        {"blocks": 2, "width": 4.0, "kernel_size": 3, "batch_norm": True, "pooling": "max", "num_steps": 16},
    ),
    "dvsgesture-dvs128": Preset(
        "dvsgesture",
        "SpikingJelly's DVS Gesture network: full 128x128 frames, 5 blocks (24-64-128-256-256 channels), 3x3, "
        "BatchNorm, max pooling, T=16, 10 output neurons per class",
        {
            "frame_size": 128, "num_steps": 16, "blocks": 5, "width": 2.0, "kernel_size": 3,
            "batch_norm": True, "pooling": "max", "population": 10, "readout": "spikes",
        },
    ),
}


# The Hyperparams fields the training loop reads for every architecture.
TRAINING = frozenset({"lr", "batch_size", "optimizer", "momentum", "weight_decay"})


def hyperparams_of(dataset: str, arch: str) -> frozenset[str]:
    """The Hyperparams fields a trial of `arch` on `dataset` reads: the loop's, the model's and the input's
    (study.loop.input_adapter: time steps and the static-image encoding for spiking models, event frames'
    size, the CNN's stacked time bins)."""
    source = lookup(DATASETS, dataset, "dataset").source
    model_class = lookup(ARCHITECTURES, arch, "architecture")
    names = set(TRAINING | model_class.hyperparams)
    if model_class.spiking:
        names |= {"num_steps"} | ({"encoding"} if source.kind == "static" else set())
    if source.kind == "events":
        names |= {"frame_size"} | (set() if model_class.spiking else {"time_bins"})
    return frozenset(names)


def model_input_shape(dataset: str, arch: str, hp: Hyperparams) -> tuple[int, int, int]:
    """`[C, H, W]` of what `arch` takes on `dataset`: one time step's frame for spiking models."""
    source = lookup(DATASETS, dataset, "dataset").source
    channels, height, width = source.input_shape(hp.frame_size)
    if source.kind == "events" and not lookup(ARCHITECTURES, arch, "architecture").spiking:
        channels *= hp.time_bins  # the CNN's time bins are stacked as channels (study.data.encoding)
    return channels, height, width


def build_model(dataset: str, arch: str, hp: Hyperparams) -> Model:
    """A fresh model of `arch` shaped for `dataset`."""
    source = lookup(DATASETS, dataset, "dataset").source
    model_class = lookup(ARCHITECTURES, arch, "architecture")
    model = model_class(model_input_shape(dataset, arch, hp), source.num_classes, hp)
    return model.to(memory_format=torch.channels_last) if model_class.channels_last else model


class DatasetAndArch:
    """What a record naming a `dataset` and an `arch` (an experiment, a checkpoint) implies about them."""

    dataset: str
    arch: str

    @property
    def spiking(self) -> bool:
        return ARCHITECTURES[self.arch].spiking

    @property
    def events(self) -> bool:
        """Event data (binned into frames), as opposed to static images."""
        return DATASETS[self.dataset].source.kind == "events"
