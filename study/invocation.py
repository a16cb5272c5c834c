"""study.json as a typed record: what a study was started with (`Invocation`), and what readers need of it.

`python -m study.run` writes it when a study starts and reads it back on --resume (study.resuming);
a checkpoint's origin (study.origin) and the analysis read its settings as `RecordedSettings`.
Imports no command-line module and nothing heavy: `python -m study.evaluate` reads it too.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

from study.cli import count, gpu_share, retries, seed, share
from study.config import OBJECTIVES, Hyperparams, StudySettings, experiment_path

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


def from_record(record) -> Invocation:
    """The Invocation `to_record` wrote; a field the record predates gets its default. A ValueError saying
    what is wrong when `record` (parsed JSON, perhaps edited by hand or damaged) is not such a record."""
    if (problem := record_problem(record)) is not None:
        raise ValueError(problem)
    settings = {**record["settings"], "data_dir": Path(record["settings"]["data_dir"])}
    if "objectives" in settings:  # a JSON list
        settings["objectives"] = tuple(settings["objectives"])
    archs = tuple(record.get("archs") or (settings["arch"],))  # study.json of a one-architecture study names none
    return Invocation(**{**record, "settings": StudySettings(**settings), "checkpoints_dir": Path(record["checkpoints_dir"]), "archs": archs})


def _json_kind(value) -> str:
    """A JSON value's kind in words: an object, a list, null, a string, ..."""
    if value is None:
        return "null"
    kinds = {bool: "true or false", dict: "an object", list: "a list", str: "a string", int: "a whole number", float: "a number"}
    return next((words for kind, words in kinds.items() if isinstance(value, kind)), type(value).__name__)


def _fits(value, annotation: str) -> bool:
    """Whether a JSON value can stand for a field annotated `annotation` ("int | None", "Path", "tuple[str, ...]")."""
    kinds = annotation.split(" | ")
    if value is None:
        return "None" in kinds
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    checks = {
        "str": isinstance(value, str),
        "Path": isinstance(value, str) and value != "",
        "int": number and isinstance(value, int),
        "float": number and math.isfinite(value),
        "bool": isinstance(value, bool),
        "dict": isinstance(value, dict),
        "tuple[str, ...]": isinstance(value, list) and all(isinstance(item, str) for item in value),
    }
    return any(checks.get(kind, False) for kind in kinds)


# The type of the flag (or, for val_fraction, of a share) each number of study.json came from: its lower bound holds.
NUMBER_TYPES = {
    "num_samples": count, "max_epochs": count, "train_limit": count, "val_limit": count, "test_limit": count,
    "max_concurrent": count, "max_failures": retries, "repeats": retries, "seed": seed, "gpus_per_trial": gpu_share,
    "cpus_per_trial": share, "val_fraction": share,
}


def _fields_problem(values: dict, cls, where: str) -> str | None:
    """The first key of `values` that `cls` (a dataclass) lacks, requires or types otherwise, in words."""
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        return f"{where} has keys this snn-study does not know: {', '.join(map(repr, unknown))}"
    required = [name for name, field in fields.items() if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING]
    missing = [name for name in required if name not in values]
    if missing:
        return f"{where} lacks {', '.join(map(repr, missing))}"
    for name, value in values.items():
        annotation = fields[name].type
        if annotation == "StudySettings":
            continue
        shown = f"{value!r}"[:60]
        if not _fits(value, annotation):
            return f"{where}'s {name!r} is {_json_kind(value)} ({shown}), not {annotation.replace('tuple[str, ...]', 'a list of names').replace('Path', 'a path')}"
        kind = NUMBER_TYPES.get(name)
        if kind is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            if value < kind.low or kind.strict and value == kind.low:
                return f"{where}'s {name!r} is {shown}; it must be {'above' if kind.strict else 'at least'} {kind.low}"
    return None


def record_problem(record) -> str | None:
    """What keeps the parsed study.json `record` from being an Invocation's record, in words; None when nothing does."""
    if not isinstance(record, dict):
        return f"it holds {_json_kind(record)}, not an object with \"settings\", \"name\", \"storage\", ..."
    if not isinstance(record.get("settings"), dict):
        return f'its "settings" is {_json_kind(record.get("settings")) if "settings" in record else "missing"}, not an object'
    problem = _fields_problem(record, Invocation, "it") or _fields_problem(record["settings"], StudySettings, '"settings"')
    if problem is not None:
        return problem
    unknown = sorted(set(record["settings"].get("objectives", ())) - set(OBJECTIVES))
    if unknown:
        return f'"settings"\'s objectives name {", ".join(map(repr, unknown))}; known: {", ".join(OBJECTIVES)}'
    fixed = sorted(set(record.get("fixed", {})) - {field.name for field in dataclasses.fields(Hyperparams)})
    if fixed:
        return f"its \"fixed\" hyperparameters name {', '.join(map(repr, fixed))}, which this snn-study does not know"
    return None


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
