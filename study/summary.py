"""summary.json: what a finished study found, as one typed, versioned record.

Written by study.outcome when a study ends, read back by the analysis through `read_summary`;
the layout version lets a reader refuse a file it does not understand instead of misreading it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from enum import StrEnum

from study.errors import UserError

SUMMARY_FILE = "summary.json"
# Bump when a field changes meaning or goes away. Files written before the field existed are version 1.
SUMMARY_VERSION = 1


class TrialStatus(StrEnum):
    """How a trial ended: the one list of statuses the summary, the results table and the report use."""

    COMPLETED = "completed"  # ran every epoch of the budget
    STOPPED_EARLY = "stopped early"  # ASHA stopped it
    DIVERGED = "diverged"  # its loss became NaN or infinite; it stopped itself
    SILENT = "silent"  # a layer emitted no spike in the whole first epoch; it stopped itself
    SATURATED = "saturated"  # a layer fired at almost every step in the first epoch; it stopped itself
    STALLED = "stalled"  # its validation accuracy was still at chance after study.loop.STALLED_AFTER epochs; it stopped itself
    ERROR = "error"  # it raised, also after its retries


# Statuses of trials that stopped themselves because they could not learn (the searcher is told so);
# each is also the name of the metric the trial reported it with (study.loop.epoch_metrics).
FAILED_TO_LEARN = (TrialStatus.DIVERGED, TrialStatus.SILENT, TrialStatus.SATURATED, TrialStatus.STALLED)
SELF_STOPPING_METRICS = tuple(status.value for status in FAILED_TO_LEARN)


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
    """The best checkpoint over every trial, tested once on the test split."""

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


@dataclass(frozen=True)
class Summary:
    dataset: str
    arch: str
    synthetic: bool
    metric: str
    mode: str
    max_epochs: int
    experiment: str  # the experiment folder (a path or a URI)
    best: BestModel | None  # None when no trial saved a checkpoint
    trials: tuple[TrialRecord, ...]
    version: int = SUMMARY_VERSION

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, default=str) + "\n"

    def trials_with(self, status: TrialStatus) -> list[TrialRecord]:
        return [trial for trial in self.trials if trial.status == status]


def json_number(value):
    """NaN and infinity are not JSON: a diverged trial's loss is written as null."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


def read_summary(text: str, where: str) -> Summary:
    """The Summary in `text` (the contents of `where`), or a UserError saying why it cannot be read."""
    try:
        record = json.loads(text)
        version = record.pop("version", 1)
        if version != SUMMARY_VERSION:
            raise UserError(f"{where} has summary layout version {version}; this snn-study reads version {SUMMARY_VERSION}.")
        trials = tuple(TrialRecord(**{**trial, "status": TrialStatus(trial["status"])}) for trial in record.pop("trials"))
        best = record.pop("best")
        return Summary(**record, best=BestModel(**best) if best is not None else None, trials=trials)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise UserError(f"{where} is not a summary this snn-study can read ({type(error).__name__}: {error}).") from None
