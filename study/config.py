"""Typed boundaries: what the study is run on (`StudySettings`) and what a trial tries (`Hyperparams`).

Ray hands a trial a plain dict; it becomes a frozen `Hyperparams` at once, so defaults,
units and typos are dealt with in one place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

# The one metric every part of the study ranks trials by: scheduler, searcher, summary, analysis.
METRIC, MODE = "val_acc", "max"
# Objectives a search can optimise (--objective): name -> (the metric each trial reports, its direction).
# Accuracy always comes first: ASHA stops trials on it and the best model is chosen by it.
ENERGY_METRIC = "energy_pj"  # estimated energy per inference (study.energy), on the first validation samples
OBJECTIVES = {"accuracy": (METRIC, MODE), "energy": (ENERGY_METRIC, "min")}
# A trial's config holds its Hyperparams and, beside them: which architecture it trains (a comparison's
# trials differ in it), and for a repeat of a best configuration its seed and its number.
ARCH_KEY, SEED_KEY, REPEAT_KEY = "arch", "seed", "repeat"
# An experiment folder's layout, here rather than in study.storage so that reading it costs no pyarrow.
STUDY_FILE = "study.json"  # the settings the study was started with; --resume reads them back
REPEATS = "repeats"  # the folder of the repeats' own Ray experiment, inside the study's


def experiment_path(storage: str, name: str) -> str:
    """The experiment folder `<storage>/<name>` (storage: a path or a URI)."""
    return f"{storage.rstrip('/')}/{name}"


@dataclass(frozen=True)
class Hyperparams:
    """One trial's choices. Search spaces return (a subset of) these fields."""

    lr: float = 1e-3  # Adam/SGD learning rate
    batch_size: int = 64
    optimizer: str = "adam"  # a key of study.loop.OPTIMIZERS
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0
    dropout: float = 0.0
    # Spiking neurons (ignored by the conventional CNN).
    num_steps: int = 25  # time steps T: time bins of event frames, or encoding steps of static images
    beta: float = 0.8  # membrane decay per time step, in (0, 1)
    threshold: float = 1.0  # firing threshold of the membrane potential
    surrogate: str = "fast_sigmoid"  # a key of study.models.lif_scan.SURROGATES
    slope: float = 25.0  # steepness of the surrogate gradient
    learn_beta: bool = False
    learn_threshold: bool = False
    reset: str = "subtract"  # after a spike: subtract the threshold, or "zero" (NIR's LIF; a key of study.models.lif_scan.RESETS)
    population: int = 1  # output neurons per class; > 1 is population coding
    encoding: str = "direct"  # static images only: a key of study.data.encoding.ENCODERS
    hidden: int = 128  # spiking LSTM: hidden units
    lstm_threshold: float = 0.05  # spiking LSTM layers: their membrane o * tanh(c) starts near +-0.05
    frame_size: int = 0  # event data: frames downsampled to frame_size x frame_size; 0 keeps the sensor size
    time_bins: int = 1  # the CNN on event data: time bins stacked as input channels (1: every event summed)
    # Capacity of the CNN and the spiking CNN (study.models.blocks): conv - [BatchNorm] - pool blocks.
    blocks: int = 2  # convolution blocks
    width: float = 1.0  # channels per block: the seed's (12, 32, 64, ...) times width
    kernel_size: int = 5
    batch_norm: bool = False  # spiking CNN: over the time-folded batch, as tdBN
    pooling: str = "max"  # a key of study.models.blocks.POOLING: "max" or "avg" (NIR has no max pooling)
    readout: str = "spikes"  # spiking models: a key of study.models.readout.RUNNING

    @classmethod
    def from_dict(cls, values: dict) -> "Hyperparams":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown hyperparameters {unknown}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class StudySettings:
    """Everything a trial needs that is not searched. Paths are absolute: trials run in their own folder."""

    dataset: str
    arch: str
    data_dir: Path
    max_epochs: int
    seed: int = 0
    synthetic: bool = False
    train_limit: int | None = None
    val_limit: int | None = None
    test_limit: int | None = None
    val_fraction: float = 0.1
    cpus_per_trial: float = 1.0
    precision: str = "auto"  # "auto", "fp32" or "bf16": see study.precision
    calibrate: bool = True  # spiking models: the first batch sets input scale and layer gains (study.models.calibration)
    objectives: tuple[str, ...] = ("accuracy",)  # keys of OBJECTIVES: what Optuna searches the Pareto front of

    @property
    def metrics(self) -> list[str]:
        """The metric of each objective, in order."""
        return [OBJECTIVES[name][0] for name in self.objectives]

    @property
    def modes(self) -> list[str]:
        return [OBJECTIVES[name][1] for name in self.objectives]

    @property
    def torch_threads(self) -> int:
        """Torch threads a trial may use: its CPU share, so concurrent trials do not oversubscribe cores."""
        return max(1, int(self.cpus_per_trial))

    @property
    def loader_workers(self) -> int:
        """Data loader processes: the trial's CPUs beyond the first (at most 4); with one CPU, batches load in the trial itself.

        Workers that are ahead of the step sleep, so they cost the torch threads little; a GPU
        step consumes batches faster, and then the extra workers keep it fed.
        """
        return min(4, max(0, int(self.cpus_per_trial) - 1))
