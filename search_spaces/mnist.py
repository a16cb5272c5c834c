"""MNIST: static 28x28 digits; spiking models see them encoded over T steps (direct current or rate-coded)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from search_spaces.common import CNN_FIRST, LSTM_FIRST, NOTHING_FIXED, SPIKING_FIRST, Choices, cnn_space, scnn_space, slstm_space

if TYPE_CHECKING:  # only for annotations: importing a search space does not import Optuna
    import optuna


def cnn(trial: optuna.Trial, fixed: Mapping[str, Any] = NOTHING_FIXED, limits: Mapping[str, int] = NOTHING_FIXED) -> dict:
    return cnn_space(Choices(trial, fixed, limits), events=False)


def scnn(trial: optuna.Trial, fixed: Mapping[str, Any] = NOTHING_FIXED, limits: Mapping[str, int] = NOTHING_FIXED) -> dict:
    return scnn_space(Choices(trial, fixed, limits), steps=(5, 30), encoding=True)


def slstm(trial: optuna.Trial, fixed: Mapping[str, Any] = NOTHING_FIXED, limits: Mapping[str, int] = NOTHING_FIXED) -> dict:
    return slstm_space(Choices(trial, fixed, limits), steps=(5, 25), encoding=True)


FIRST_TRIALS = {
    "cnn": CNN_FIRST,
    "scnn": {**SPIKING_FIRST, "num_steps": 10, "encoding": "direct"},
    "slstm": {**LSTM_FIRST, "num_steps": 10, "encoding": "direct"},
}
