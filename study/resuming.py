"""--resume: continue a study with the invocation its study.json holds, refusing flags that would be ignored."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from study.config import STUDY_FILE, experiment_path
from study.errors import UserError
from study.invocation import SMOKE, Invocation, from_record
from study.saved_state import check_restorable
from study.storage import load_study

# Where the value of each flag that study.json keeps lands in an Invocation ("settings.x": its StudySettings'
# x). --resume takes the study's own values for them; it honours only the dataset, --name, --storage,
# --checkpoints-dir, --address and --dashboard-host. --smoke sets the values SMOKE names.
KEPT_BY_STUDY = {
    "arch": "archs",
    "seed": "settings.seed",
    "objective": "settings.objectives",
    "preset": "preset",
    "fix": "fixed",
    "num_samples": "num_samples",
    "max_epochs": "settings.max_epochs",
    "repeats": "repeats",
    "data_dir": "settings.data_dir",
    "synthetic": "settings.synthetic",
    "train_limit": "settings.train_limit",
    "val_limit": "settings.val_limit",
    "test_limit": "settings.test_limit",
    "cpus_per_trial": "settings.cpus_per_trial",
    "gpus_per_trial": "gpus_per_trial",
    "max_concurrent": "max_concurrent",
    "max_failures": "max_failures",
    "precision": "settings.precision",
    "calibrate": "settings.calibrate",
}
FLAG_NAMES = {"calibrate": "--no-calibration"}  # the flags not spelled --<destination>


def _value(invocation: Invocation, field: str):
    for part in field.split("."):
        invocation = getattr(invocation, part)
    return invocation


def check_nothing_ignored(asked: Invocation, started: Invocation, typed: frozenset[str]) -> None:
    """Refuse a --resume whose typed flags differ from the study's: they would be ignored without a word
    (a user who adds --num-samples 50 to extend a study would get the study's 20)."""
    ignored = []
    for name in sorted(typed & {*KEPT_BY_STUDY, "smoke"}):
        fields = [KEPT_BY_STUDY[key] for key in SMOKE] if name == "smoke" else [KEPT_BY_STUDY[name]]
        field = next((field for field in fields if _value(asked, field) != _value(started, field)), None)
        if field is not None:
            flag = FLAG_NAMES.get(name, "--" + name.replace("_", "-"))
            ignored.append(f"{flag} ({field.split('.')[-1]} {_value(asked, field)}, not the study's {_value(started, field)})")
    if ignored:
        raise UserError(
            f"--resume continues {asked.name!r} with the settings in its {STUDY_FILE}, so these flags would be ignored: "
            f"{'; '.join(ignored)}. Leave them out to resume, or start a new study under another --name to change "
            f"them. Nothing was changed."
        )


def resumed(asked: Invocation, checkpoints_dir: Path | None = None, typed: frozenset[str] = frozenset()) -> Invocation:
    """The invocation an experiment was started with: --resume continues the same study, except where it is
    stored and, when `checkpoints_dir` is given, where its best models are exported. `typed`: the flags the
    user typed (study.cli.typed_flags); one whose value differs from the study's is refused rather than ignored."""
    started = recorded(asked.storage, asked.name)
    if started.settings.dataset != asked.settings.dataset:
        raise UserError(f"The experiment {asked.name!r} studies {started.settings.dataset}, not {asked.settings.dataset}.")
    check_nothing_ignored(asked, started, typed)
    check_restorable(experiment_path(asked.storage, asked.name))
    print(f"Resuming {asked.name!r} with the settings it was started with ({STUDY_FILE}).", flush=True)
    exports = started.checkpoints_dir if checkpoints_dir is None else checkpoints_dir.resolve()
    # The experiment is the folder resumed: a study.json copied with its folder under a new name still names
    # the old one, whose exports would then be overwritten.
    return dataclasses.replace(started, name=asked.name, storage=asked.storage, checkpoints_dir=exports)


def recorded(storage: str, name: str) -> Invocation:
    """The invocation the experiment's study.json records, or a UserError naming the file and what is wrong with it
    (edited by hand, damaged, or written by something else: `{}`, `[]`, null, a setting missing or unknown)."""
    record = load_study(storage, name)
    try:
        started = from_record(record)
    except (ValueError, TypeError) as error:
        problem = str(error)
    else:
        problem = _names_problem(started)
        if problem is None:
            return started
    raise UserError(
        f"--resume: {experiment_path(storage, name)}/{STUDY_FILE} is not a study record this snn-study can read: "
        f"{problem}. It records how the study was started; restore it, or start the study again under another "
        f"--name. Nothing was changed."
    )


def _names_problem(started: Invocation) -> str | None:
    """A recorded architecture or precision this snn-study does not know, in words (the dataset is compared
    with the one typed)."""
    from study.precision import PRECISIONS
    from study.registry import ARCHITECTURES

    unknown = [arch for arch in (started.settings.arch, *started.archs) if arch not in ARCHITECTURES]
    if unknown:
        return f"it names the architecture {unknown[0]!r}; known: {', '.join(sorted(ARCHITECTURES))}"
    if started.settings.precision not in PRECISIONS:
        return f"its precision is {started.settings.precision!r}; known: {', '.join(PRECISIONS)}"
    return None
