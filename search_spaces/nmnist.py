"""N-MNIST: 34x34 event streams of ~300 ms (three saccades), binned into T frames."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from search_spaces.common import CNN_EVENTS_FIRST, LSTM_FIRST, NOTHING_FIXED, SPIKING_FIRST, Choices, cnn_space, scnn_space, slstm_space

if TYPE_CHECKING:  # only for annotations: importing a search space does not import Optuna
    import optuna


def cnn(trial: optuna.Trial, fixed: Mapping[str, Any] = NOTHING_FIXED, limits: Mapping[str, int] = NOTHING_FIXED) -> dict:
    return cnn_space(Choices(trial, fixed, limits), events=True)


def scnn(trial: optuna.Trial, fixed: Mapping[str, Any] = NOTHING_FIXED, limits: Mapping[str, int] = NOTHING_FIXED) -> dict:
    return scnn_space(Choices(trial, fixed, limits), steps=(10, 40))


def slstm(trial: optuna.Trial, fixed: Mapping[str, Any] = NOTHING_FIXED, limits: Mapping[str, int] = NOTHING_FIXED) -> dict:
    return slstm_space(Choices(trial, fixed, limits), steps=(10, 30))


FIRST_TRIALS = {"cnn": CNN_EVENTS_FIRST, "scnn": SPIKING_FIRST, "slstm": LSTM_FIRST}
