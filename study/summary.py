"""summary.json: what a finished study found, as one typed, versioned record.

Written by study.outcome when a study ends, read back by the analysis through `read_summary`;
the layout version lets a reader refuse a file it does not understand instead of misreading it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from study.errors import UserError
from study.statistics import CONFIDENCE, Interval
from study.status import FAILED_TO_LEARN, SELF_STOPPING_METRICS, TrialStatus  # noqa: F401  (part of the record's vocabulary)

SUMMARY_FILE = "summary.json"
# Bump when a field changes meaning or goes away. Files written before the field existed are version 1.
SUMMARY_VERSION = 2  # 2: several architectures per study, repeats and their statistics




@dataclass(frozen=True)
class TrialRecord:
    trial_id: str
    config: dict  # what the search chose
    status: TrialStatus
    epochs: int  # epochs it finished (its own count, see study.trainable.resume_state)
    last: dict  # its last epoch's metrics (study.loop.EPOCH_METRICS it reported; non-finite ones as None)
    error: str | None  # the end of its error message
    path: str  # its trial folder, where Ray left it


@dataclass(frozen=True)
class BestModel:
    """An architecture's best checkpoint over its search, exported and tested once on the test split."""

    trial_id: str
    config: dict
    epoch: int
    val_acc: float
    val_loss: float | None
    checkpoint: str  # the exported best.pth
    trial_checkpoint: str  # the trial checkpoint it was copied from, inside the experiment
    test_acc: float
    test_loss: float | None
    test_samples: int
    output_silent: bool = False  # spike-count outputs: no output spike on the whole test split


@dataclass(frozen=True)
class RepeatRecord:
    """The best configuration trained again from scratch with a new seed, tested at its best validation epoch."""

    repeat: int
    seed: int
    trial_id: str
    status: TrialStatus
    best_epoch: int
    val_acc: float
    test_acc: float
    test_loss: float | None
    test_samples: int
    output_silent: bool
    predictions: str  # the JSON file of its per-sample test predictions ({"predicted": [...], "labels": [...]})


@dataclass(frozen=True)
class Architecture:
    """One architecture of a study: its search, its best model, its repeats and their statistics."""

    arch: str
    spiking: bool
    saw: str  # what its best configuration's input was, in words (study.data.encoding.what_it_sees)
    best: BestModel | None  # None when no trial of it saved a checkpoint
    trials: tuple[TrialRecord, ...]
    repeats: tuple[RepeatRecord, ...] = ()
    test_acc: Interval | None = None  # over the repeats: mean, standard deviation, 95% CI
    test_loss: Interval | None = None
    repeats_lost: int = 0  # repeats that ended without a test (they raised, also after retries): not in the statistics

    @property
    def silent_repeats(self) -> int:
        """Repeats whose model emitted no output spike on the test split (their accuracy is the membrane tie-break's)."""
        return sum(record.output_silent for record in self.repeats)

    def repeats_caveat(self) -> str:
        """What the reader of the repeats' statistics must know about them, or ''."""
        notes = []
        if self.repeats_lost:
            notes.append(f"{self.repeats_lost} lost (ended without a test, left out)")
        if self.silent_repeats:
            notes.append(f"{self.silent_repeats} with no output spike on the test split")
        return ", ".join(notes)

    def trials_with(self, status: TrialStatus) -> list[TrialRecord]:
        return [trial for trial in self.trials if trial.status == status]


UNSTABLE_DIFFERENCE = "the test samples differ by the paired test, but the difference is not stable across seeds at this number of repeats"


@dataclass(frozen=True)
class Comparison:
    """Two architectures' repeats on the same test samples (study.statistics.compare)."""

    first: str
    second: str
    difference: Interval  # test accuracy, first minus second, paired by seed
    test: str  # the name of the paired test on per-sample outcomes
    discordant: tuple[int, int]  # test samples the first got right more often than the second (over the repeats), and fewer
    p_value: float
    distinguishable: bool  # False: "indistinguishable at this sample size"

    @property
    def samples_differ_but_seeds_disagree(self) -> bool:
        """The paired test finds the test samples differ, yet the interval over seeds holds zero: two questions, two answers."""
        return not self.distinguishable and self.p_value < 1 - CONFIDENCE


@dataclass(frozen=True)
class Summary:
    dataset: str
    synthetic: bool
    metric: str
    mode: str
    max_epochs: int
    experiment: str  # the experiment folder (a path or a URI)
    architectures: tuple[Architecture, ...]
    repeats: int = 0  # asked per architecture
    comparisons: tuple[Comparison, ...] = ()
    version: int = SUMMARY_VERSION

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, default=str) + "\n"

    @property
    def trials(self) -> tuple[TrialRecord, ...]:
        return tuple(trial for architecture in self.architectures for trial in architecture.trials)

    def of(self, arch: str) -> Architecture:
        return next(architecture for architecture in self.architectures if architecture.arch == arch)

    def trials_with(self, status: TrialStatus) -> list[TrialRecord]:
        return [trial for trial in self.trials if trial.status == status]


def json_number(value):
    """NaN and infinity are not JSON: a diverged trial's loss is written as null."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


def _interval(record: dict | None) -> Interval | None:
    return Interval(**record) if record is not None else None


def _trials(records: list) -> tuple[TrialRecord, ...]:
    return tuple(TrialRecord(**{**trial, "status": TrialStatus(trial["status"])}) for trial in records)


def _architecture(record: dict) -> Architecture:
    best = record.pop("best")
    return Architecture(
        **{key: value for key, value in record.items() if key not in ("trials", "repeats", "test_acc", "test_loss")},
        best=BestModel(**best) if best is not None else None,
        trials=_trials(record["trials"]),
        repeats=tuple(RepeatRecord(**{**r, "status": TrialStatus(r["status"])}) for r in record.get("repeats", [])),
        test_acc=_interval(record.get("test_acc")),
        test_loss=_interval(record.get("test_loss")),
    )


def _from_version_1(record: dict) -> dict:
    """A version-1 summary (one architecture, no repeats) in version 2's layout."""
    from study.registry import ARCHITECTURES

    arch = record.pop("arch")
    architecture = {"arch": arch, "spiking": ARCHITECTURES[arch].spiking, "saw": "", "best": record.pop("best"), "trials": record.pop("trials")}
    return {**record, "architectures": [architecture]}


def read_summary(text: str, where: str) -> Summary:
    """The Summary in `text` (the contents of `where`), or a UserError saying why it cannot be read.

    Version-1 summaries (one architecture, written before comparisons) are read into version 2's layout.
    """
    try:
        record = json.loads(text)
        version = record.pop("version", 1)
        if version == 1:
            record = _from_version_1(record)
        elif version != SUMMARY_VERSION:
            raise UserError(f"{where} has summary layout version {version}; this snn-study reads versions 1 and {SUMMARY_VERSION}.")
        comparisons = tuple(
            Comparison(**{**c, "difference": Interval(**c["difference"]), "discordant": tuple(c["discordant"])})
            for c in record.pop("comparisons", [])
        )
        architectures = tuple(_architecture(architecture) for architecture in record.pop("architectures"))
        return Summary(**record, architectures=architectures, comparisons=comparisons)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise UserError(f"{where} is not a summary this snn-study can read ({type(error).__name__}: {error}).") from None
