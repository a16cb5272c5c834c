"""study.json as a typed record: what a study was started with (`Invocation`), and what readers need of it.

`python -m study.run` writes it when a study starts and reads it back on --resume (study.resuming);
a checkpoint's origin (study.origin) and the analysis read its settings as `RecordedSettings`.
Imports no command-line module and nothing heavy: `python -m study.evaluate` reads it too.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from study.config import StudySettings, experiment_path

# Budgets of a study: by default, and under --smoke (a whole study on tiny subsets, about two minutes
# on 2 CPU cores, see README). A flag the user types wins over both.
DEFAULTS = {"num_samples": 20, "max_epochs": 10, "train_limit": None, "val_limit": None, "test_limit": None, "repeats": 3}
SMOKE = {"num_samples": 2, "max_epochs": 2, "train_limit": 200, "val_limit": 50, "test_limit": 50, "repeats": 2}


@dataclass(frozen=True)
class Invocation:
    """What study.json keeps: the study's settings and how it is scheduled and stored."""

    settings: StudySettings
    name: str
    storage: str
    num_samples: int
    gpus_per_trial: float | None
    max_concurrent: int | None
    max_failures: int
    checkpoints_dir: Path
    preset: str | None = None
    fixed: dict = dataclasses.field(default_factory=dict)  # hyperparameters not searched: the preset's, then --fix
    archs: tuple[str, ...] = ()  # the architectures compared (settings.arch is the first)
    repeats: int = 0  # trainings of each best configuration with new seeds, after the searches

    @property
    def experiment_path(self) -> str:
        return experiment_path(self.storage, self.name)


def to_record(invocation: Invocation) -> dict:
    """What study.json keeps of an invocation (plain JSON)."""
    return json.loads(json.dumps(dataclasses.asdict(invocation), default=str))


def from_record(record: dict) -> Invocation:
    """The Invocation `to_record` wrote; a field the record predates gets its default."""
    settings = {**record["settings"], "data_dir": Path(record["settings"]["data_dir"])}
    if "objectives" in settings:  # a JSON list
        settings["objectives"] = tuple(settings["objectives"])
    archs = tuple(record.get("archs") or (settings["arch"],))  # study.json of a one-architecture study names none
    return Invocation(**{**record, "settings": StudySettings(**settings), "checkpoints_dir": Path(record["checkpoints_dir"]), "archs": archs})


@dataclass(frozen=True)
class RecordedSettings:
    """What the readers of a study's results and checkpoints use of study.json's settings. Each may be absent
    (older or hand-written records), so a bad or missing value reads as its default."""

    data_dir: Path | None = None
    test_limit: int | None = None  # None: the whole test split
    objectives: tuple[str, ...] = StudySettings.objectives

    @classmethod
    def of(cls, record) -> RecordedSettings | None:
        """The settings of the study record `record` (parsed JSON); None when it has no "settings" object."""
        settings = record.get("settings") if isinstance(record, dict) else None
        if not isinstance(settings, dict):
            return None
        data_dir, limit, objectives = settings.get("data_dir"), settings.get("test_limit"), settings.get("objectives")
        return cls(
            data_dir=Path(data_dir) if isinstance(data_dir, str) else None,
            test_limit=limit if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1 else None,
            objectives=tuple(objectives) if isinstance(objectives, list) else cls.objectives,
        )
