"""MNIST: static 28x28 digits; spiking models see them encoded over T steps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from search_spaces.common import CNN_FIRST, LSTM_FIRST, SPIKING_FIRST, conventional, lstm, optimizer, spiking_neurons

if TYPE_CHECKING:  # only for annotations: importing a search space does not import Optuna
    import optuna


def cnn(trial: optuna.Trial) -> dict:
    conventional(trial)
    return {}


def scnn(trial: optuna.Trial) -> dict:
    optimizer(trial)
    spiking_neurons(trial, min_steps=5, max_steps=30)
    trial.suggest_categorical("encoding", ["direct", "rate"])
    return {}


def slstm(trial: optuna.Trial) -> dict:
    optimizer(trial)
    spiking_neurons(trial, min_steps=5, max_steps=25)
    trial.suggest_categorical("encoding", ["direct", "rate"])
    lstm(trial)
    return {}


# Tried first, before the sampler proposes anything (see search_spaces.common).
FIRST_TRIALS = {"cnn": CNN_FIRST, "scnn": {**SPIKING_FIRST, "encoding": "direct"}, "slstm": {**LSTM_FIRST, "encoding": "direct"}}
