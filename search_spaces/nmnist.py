"""N-MNIST: 34x34 event streams of ~300 ms (three saccades), binned into T frames."""

from __future__ import annotations

import optuna

from search_spaces.common import lstm, optimizer, spiking_neurons


def cnn(trial: optuna.Trial) -> dict:
    optimizer(trial)
    trial.suggest_float("dropout", 0.0, 0.5)
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
