"""MNIST: static 28x28 digits; spiking models see them encoded over T steps."""

from __future__ import annotations

import optuna

from search_spaces.common import lstm, optimizer, spiking_neurons


def cnn(trial: optuna.Trial) -> dict:
    optimizer(trial)
    trial.suggest_float("dropout", 0.0, 0.5)
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
