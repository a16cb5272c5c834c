"""N-MNIST: 34x34 event streams of ~300 ms (three saccades), binned into T frames."""

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
    spiking_neurons(trial, min_steps=10, max_steps=40)
    return {}


def slstm(trial: optuna.Trial) -> dict:
    optimizer(trial)
    spiking_neurons(trial, min_steps=10, max_steps=30)
    lstm(trial)
    return {}


# Tried first, before the sampler proposes anything (see search_spaces.common).
FIRST_TRIALS = {"cnn": CNN_FIRST, "scnn": SPIKING_FIRST, "slstm": LSTM_FIRST}
