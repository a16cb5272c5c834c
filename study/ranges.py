"""The values a trial's hyperparameters can take at all (not the ranges searched: search_spaces/ holds those).

A checkpoint edited by hand, or `--fix num_steps=0`, would otherwise build a model that fails deep inside
a trial or an evaluation (no time step to run, a batch of none). Each is refused first, by name.
"""

from __future__ import annotations

import dataclasses
import math

from study.config import Hyperparams
from study.errors import UserError

# The most time steps a model may run. Frames, membrane traces and spike records grow with T: a
# checkpoint or --fix with num_steps 1e9 asked for 168 TiB before any check. DVS Gesture at its finest
# (1 ms bins over ~6 s) needs about 6000, so 10000 leaves room for every data set here.
MAX_NUM_STEPS = 10_000

# field -> (is the value possible, what it must be)
POSSIBLE = {
    "lr": (lambda v: v > 0, "a positive number"),
    "batch_size": (lambda v: v >= 1, "a whole number of at least 1"),
    "momentum": (lambda v: 0 <= v < 1, "from 0 up to (not including) 1"),
    "weight_decay": (lambda v: v >= 0, "zero or positive"),
    "dropout": (lambda v: 0 <= v < 1, "from 0 up to (not including) 1"),
    "num_steps": (lambda v: 1 <= v <= MAX_NUM_STEPS, f"a whole number from 1 to {MAX_NUM_STEPS}"),
    "beta": (lambda v: 0 <= v <= 1, "from 0 to 1"),
    "threshold": (lambda v: v > 0, "a positive number"),
    "slope": (lambda v: v > 0, "a positive number"),
    "population": (lambda v: v >= 1, "a whole number of at least 1"),
    "hidden": (lambda v: v >= 1, "a whole number of at least 1"),
    "lstm_threshold": (lambda v: v > 0, "a positive number"),
    "frame_size": (lambda v: v >= 0, "zero (the sensor's size) or a whole number of pixels"),
    "time_bins": (lambda v: v >= 1, "a whole number of at least 1"),
    "blocks": (lambda v: v >= 1, "a whole number of at least 1"),
    "width": (lambda v: v > 0, "a positive number"),
    "kernel_size": (lambda v: v >= 1, "a whole number of at least 1"),
}


def hyperparam_problem(hp: Hyperparams) -> str | None:
    """The first hyperparameter of `hp` of the wrong type or outside what it can be, in words; None when all fit."""
    for field in dataclasses.fields(Hyperparams):
        value, kind = getattr(hp, field.name), field.type if isinstance(field.type, str) else field.type.__name__
        expected = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}[kind]
        if not isinstance(value, expected) or (kind != "bool" and isinstance(value, bool)):
            return f"{field.name}={value!r} is not {'an' if kind == 'int' else 'a'} {kind}"
        if kind == "float" and not math.isfinite(value):
            return f"{field.name}={value!r} is not a finite number"
        if field.name in POSSIBLE and not POSSIBLE[field.name][0](value):
            return f"{field.name}={value!r}: it must be {POSSIBLE[field.name][1]}"
    return None


def check_hyperparams(hp: Hyperparams, where: str) -> None:
    """A UserError naming `where` (a checkpoint, --fix) when a hyperparameter of `hp` cannot be used."""
    if (problem := hyperparam_problem(hp)) is not None:
        raise UserError(f"{where}: {problem}.")
