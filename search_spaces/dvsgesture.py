"""DVS128 Gesture: 128x128 event streams of ~6 s, downsampled to 32x32 frames (fixed unless a preset says otherwise)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from search_spaces.common import CNN_EVENTS_FIRST, LSTM_FIRST, NOTHING_FIXED, SPIKING_FIRST, Choices, cnn_space, scnn_space, slstm_space

if TYPE_CHECKING:  # only for annotations: importing a search space does not import Optuna
    import optuna

# 32x32 keeps the gestures recognisable at 1/16 of the pixels.
FRAME_SIZE = 32


def cnn(trial: optuna.Trial, fixed: Mapping[str, Any] = NOTHING_FIXED, limits: Mapping[str, int] = NOTHING_FIXED) -> dict:
    return cnn_space(Choices(trial, fixed, limits), events=True, frame_size=FRAME_SIZE)


def scnn(trial: optuna.Trial, fixed: Mapping[str, Any] = NOTHING_FIXED, limits: Mapping[str, int] = NOTHING_FIXED) -> dict:
    return scnn_space(Choices(trial, fixed, limits), steps=(10, 30), frame_size=FRAME_SIZE)


def slstm(trial: optuna.Trial, fixed: Mapping[str, Any] = NOTHING_FIXED, limits: Mapping[str, int] = NOTHING_FIXED) -> dict:
    return slstm_space(Choices(trial, fixed, limits), steps=(10, 30), frame_size=FRAME_SIZE)


FIRST_TRIALS = {"cnn": CNN_EVENTS_FIRST, "scnn": {**SPIKING_FIRST, "num_steps": 15}, "slstm": {**LSTM_FIRST, "num_steps": 15}}
