"""DVS128 Gesture: 128x128 event streams of ~6 s, downsampled to 32x32 frames (fixed, not searched)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from search_spaces.common import CNN_FIRST, LSTM_FIRST, SPIKING_FIRST, conventional, lstm, optimizer, spiking_neurons

if TYPE_CHECKING:  # only for annotations: importing a search space does not import Optuna
    import optuna

# 32x32 keeps the gestures recognisable at 1/16 of the pixels.
FRAME_SIZE = 32


def cnn(trial: optuna.Trial) -> dict:
    conventional(trial)
    return {"frame_size": FRAME_SIZE}


def scnn(trial: optuna.Trial) -> dict:
    optimizer(trial)
    spiking_neurons(trial, min_steps=10, max_steps=30)
    return {"frame_size": FRAME_SIZE}


def slstm(trial: optuna.Trial) -> dict:
    optimizer(trial)
    spiking_neurons(trial, min_steps=10, max_steps=30)
    lstm(trial)
    return {"frame_size": FRAME_SIZE}


# Tried first, before the sampler proposes anything (see search_spaces.common).
FIRST_TRIALS = {"cnn": CNN_FIRST, "scnn": SPIKING_FIRST, "slstm": LSTM_FIRST}
