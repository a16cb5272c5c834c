"""N-MNIST: 34x34 event streams of ~300 ms (three saccades), binned into T frames."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from search_spaces.common import (
    CNN_EVENTS_FIRST,
    LSTM_FIRST,
    NOTHING_FIXED,
    SPIKING_FIRST,
    Choices,
    capacity,
    conventional,
    event_frames,
    lstm,
    optimizer,
    spiking_neurons,
)

if TYPE_CHECKING:  # only for annotations: importing a search space does not import Optuna
    import optuna


def cnn(trial: optuna.Trial, fixed: Mapping[str, Any] = NOTHING_FIXED) -> dict:
    choose = Choices(trial, fixed)
    conventional(choose)
    event_frames(choose)
    return choose.constants()


def scnn(trial: optuna.Trial, fixed: Mapping[str, Any] = NOTHING_FIXED) -> dict:
    choose = Choices(trial, fixed)
    optimizer(choose)
    capacity(choose)
    spiking_neurons(choose, min_steps=10, max_steps=40)
    return choose.constants()


def slstm(trial: optuna.Trial, fixed: Mapping[str, Any] = NOTHING_FIXED) -> dict:
    choose = Choices(trial, fixed)
    optimizer(choose)
    spiking_neurons(choose, min_steps=10, max_steps=30)
    lstm(choose)
    return choose.constants()


FIRST_TRIALS = {"cnn": CNN_EVENTS_FIRST, "scnn": SPIKING_FIRST, "slstm": LSTM_FIRST}
