"""Pieces shared by the search spaces. Ranges are documented where they are chosen.

A space asks its questions through `Choices`: Optuna suggests each value, unless the study fixed it
(`--preset`, `--fix NAME=VALUE`); fixed values are returned as the space's constants, so they reach
every trial's config, and the sampler never spends trials on them.

Optuna's parameters are named after Hyperparams fields, except a field whose range depends on an earlier
choice (the learning rate per optimizer, the surrogate's slope per surrogate): each choice's range is its
own parameter (`lr_adam`, `lr_sgd`; see PER_CHOICE), and `as_hyperparams` turns them back into the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for annotations: importing a search space does not import Optuna
    import optuna

NOTHING_FIXED: Mapping[str, Any] = MappingProxyType({})


class Choices:
    """One trial's questions: suggested by Optuna, or the value the study fixed.

    `limits`: upper bounds the study sets on integer parameters from what fixed values leave possible
    (study.search.depth_range: a small `--fix frame_size` fits fewer convolution blocks).
    """

    def __init__(self, trial: optuna.Trial, fixed: Mapping[str, Any], limits: Mapping[str, int] = NOTHING_FIXED):
        self.trial, self.fixed, self.limits = trial, fixed, limits

    def categorical(self, name: str, choices: list):
        return self.fixed[name] if name in self.fixed else self.trial.suggest_categorical(name, choices)

    def float(self, name: str, low: float, high: float, log: bool = False) -> float:
        return self.fixed[name] if name in self.fixed else self.trial.suggest_float(name, low, high, log=log)

    def float_per_choice(self, name: str, choice: str, ranges: Mapping[str, tuple[float, float]], log: bool = False) -> float:
        """The Hyperparams field `name`, whose range depends on an earlier `choice` (a key of `ranges`), asked as
        its own Optuna parameter per choice (`lr_adam`, `lr_sgd`): TPE's groups (`group=True`) then model each
        range apart. One name with a range per choice would be one dimension with two distributions, which
        Optuna's group decomposition keeps only one of, leaving the other to independent sampling.
        A fixed value (`--fix lr=0.01`) is used whatever the choice."""
        if name in self.fixed:
            return self.fixed[name]
        return self.trial.suggest_float(param_name(name, choice), *ranges[choice], log=log)

    def int(self, name: str, low: int, high: int, step: int = 1) -> int:
        if name in self.fixed:
            return self.fixed[name]
        return self.trial.suggest_int(name, low, min(high, self.limits.get(name, high)), step=step)

    def constants(self, **chosen) -> dict:
        """What the space returns: the fixed values and the constants it chose itself."""
        return {**chosen, **self.fixed}


# Learning rates per optimizer: SGD needs rates about ten times Adam's (log-uniform over about 1.5 decades
# each; with momentum 0.9 SGD's effective step is ten times its rate, and above 0.1 networks without
# BatchNorm died in the search benchmark).
LEARNING_RATES = {"adam": (1e-4, 1e-2), "sgd": (3e-3, 1e-1)}


def optimizer(choose: Choices) -> None:
    """Adam or SGD with momentum, each with its own learning-rate range; the batch size (16-64: small batches
    take more steps per epoch, which short studies on small data sets need; fix a larger one on a GPU)."""
    name = choose.categorical("optimizer", list(LEARNING_RATES))
    choose.float_per_choice("lr", name, LEARNING_RATES, log=True)  # Optuna's lr_adam or lr_sgd
    if name == "sgd":  # momentum only exists for SGD: a conditional parameter
        choose.float("momentum", 0.8, 0.95)
    choose.categorical("batch_size", [16, 32, 64])


def capacity(choose: Choices) -> None:
    """Depth (2-4 conv blocks) and width (the seed's channels times 0.5, 1 or 2), kernel, BatchNorm, pooling."""
    choose.int("blocks", 2, 4)
    choose.categorical("width", [0.5, 1.0, 2.0])
    choose.categorical("kernel_size", [3, 5])
    choose.categorical("batch_norm", [False, True])
    choose.categorical("pooling", ["max", "avg"])


def conventional(choose: Choices) -> None:
    """The conventional CNN: optimizer, capacity and dropout before the classifier."""
    optimizer(choose)
    capacity(choose)
    choose.float("dropout", 0.0, 0.5)


def event_frames(choose: Choices) -> None:
    """The CNN on event data: 1 time bin (every event summed, no time order) or 2-8 stacked as channels,
    so that it can see time too (DVS Gesture's clockwise and counter-clockwise pairs need it)."""
    choose.categorical("time_bins", [1, 2, 4, 8])


# Surrogate slopes per surrogate. The fast sigmoid's gradient 1 / (slope |x| + 1)^2 has a heavy tail, so
# it still reaches neurons far from threshold at slope 50 (snnTorch's default: 25). The sigmoid's,
# slope s(1 - s), falls off exponentially: at slopes above about 8 almost no neuron gets a gradient, and
# in the search benchmark such trials stayed at chance (digits, SGD lr 0.009, slope 39: 10% after two
# epochs; the same trial at slope 4: 93%). 1.5-6 brackets SpikingJelly's default of 4.
SLOPES = {"fast_sigmoid": (5.0, 50.0), "sigmoid": (1.5, 6.0)}


# Hyperparams fields searched with a range per earlier choice (Choices.float_per_choice): each choice's range is
# its own Optuna parameter, named field_choice. A trial's config, and everything after it, knows the field only.
PER_CHOICE = {"lr": LEARNING_RATES, "slope": SLOPES}


def param_name(field: str, choice: str) -> str:
    """The Optuna parameter that searches `field` when `choice` was made: lr_adam, slope_sigmoid."""
    return f"{field}_{choice}"


FIELD_OF = {param_name(field, choice): field for field, ranges in PER_CHOICE.items() for choice in ranges}


def field_of(param: str) -> str:
    """The Hyperparams field an Optuna parameter sets: lr_sgd -> lr; any other name is its own field."""
    return FIELD_OF.get(param, param)


def as_hyperparams(params: Mapping[str, Any]) -> dict:
    """Optuna parameters (with a space's constants) as Hyperparams fields: {"lr_sgd": 0.03} -> {"lr": 0.03}."""
    return {field_of(name): value for name, value in params.items()}


def as_params(values: Mapping[str, Any]) -> dict:
    """Hyperparams fields as the Optuna parameters that may ask them, to enqueue a trial: {"lr": 2e-3} ->
    {"lr_adam": 2e-3, "lr_sgd": 2e-3}; the space asks the one its optimizer needs (and Optuna ignores the other)."""
    params = {}
    for name, value in values.items():
        names = [param_name(name, choice) for choice in PER_CHOICE[name]] if name in PER_CHOICE else [name]
        params |= dict.fromkeys(names, value)
    return params


def spiking_neurons(choose: Choices, min_steps: int, max_steps: int) -> None:
    """Leaky integrate-and-fire neurons and the output layer.

    beta in [0.5, 0.99]: the seed compared 0.5 and 0.8; threshold in [0.5, 2] (calibration scales
    the weights to it, so it sets the membrane's scale against the surrogate's slope); T in steps
    of 5; population 1 (one neuron per class) or population coding; readout spike counts or the
    output membrane's mean or maximum over time.
    """
    choose.float("beta", 0.5, 0.99)
    choose.float("threshold", 0.5, 2.0)
    choose.int("num_steps", min_steps, max_steps, step=5)
    choose.categorical("population", [1, 5, 10])
    surrogate = choose.categorical("surrogate", list(SLOPES))  # the spike's gradient stand-in
    choose.float_per_choice("slope", surrogate, SLOPES, log=True)  # its steepness: slope_fast_sigmoid or slope_sigmoid
    choose.categorical("learn_beta", [False, True])
    choose.categorical("learn_threshold", [False, True])
    choose.categorical("readout", ["spikes", "membrane_mean", "membrane_max"])


def lstm(choose: Choices) -> None:
    """Spiking LSTM layers: hidden size. Their thresholds are set by calibration from the first batch
    (with --no-calibration: `lstm_threshold`, 0.05 unless fixed)."""
    choose.categorical("hidden", [64, 128, 256])


# The three spaces, as each dataset's module asks them (with its own ranges and constants).


def cnn_space(choose: Choices, events: bool, **constants) -> dict:
    """The conventional CNN; on event data also how many time bins it sees stacked."""
    conventional(choose)
    if events:
        event_frames(choose)
    return choose.constants(**constants)


def scnn_space(choose: Choices, steps: tuple[int, int], encoding: bool = False, **constants) -> dict:
    """The spiking CNN: optimizer, capacity, neurons with T in `steps`; static images also their encoding."""
    optimizer(choose)
    capacity(choose)
    spiking_neurons(choose, *steps)
    if encoding:
        choose.categorical("encoding", ["direct", "rate"])
    return choose.constants(**constants)


def slstm_space(choose: Choices, steps: tuple[int, int], encoding: bool = False, **constants) -> dict:
    """The spiking LSTM: optimizer, neurons with T in `steps`, hidden size; static images also their encoding."""
    optimizer(choose)
    spiking_neurons(choose, *steps)
    if encoding:
        choose.categorical("encoding", ["direct", "rate"])
    lstm(choose)
    return choose.constants(**constants)


# First trials: settings known to learn, evaluated before the sampler proposes any (Hyperparams fields;
# study.search.first_trial asks them of Optuna under its own names, lr_adam). The seed's network
# (2 blocks of 12 and 32 channels, 5x5 kernels, max pooling), Adam; spiking models read out the output
# membrane's mean, which learns from the first step (a spike-count readout needs output spikes first).
OPTIMIZER_FIRST = {"optimizer": "adam", "lr": 2e-3, "batch_size": 32}
CAPACITY_FIRST = {"blocks": 2, "width": 1.0, "kernel_size": 5, "batch_norm": False, "pooling": "max"}
CNN_FIRST = {**OPTIMIZER_FIRST, **CAPACITY_FIRST, "dropout": 0.0}
CNN_EVENTS_FIRST = {**CNN_FIRST, "time_bins": 1}
NEURONS_FIRST = {
    "beta": 0.8,
    "threshold": 1.0,
    "population": 1,
    "surrogate": "fast_sigmoid",
    "slope": 25.0,
    "learn_beta": False,
    "learn_threshold": False,
    "readout": "membrane_mean",
}
SPIKING_FIRST = {**OPTIMIZER_FIRST, **CAPACITY_FIRST, **NEURONS_FIRST, "num_steps": 25}
LSTM_FIRST = {**OPTIMIZER_FIRST, **NEURONS_FIRST, "num_steps": 20, "hidden": 128}
