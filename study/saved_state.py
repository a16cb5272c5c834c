"""What Ray Tune last saved of an experiment: whether every trial ended, and whether the state can be restored.

When a study is interrupted (Ctrl-C, SIGTERM), Ray Tune saves its state, then stops the running trials
and marks them TERMINATED in memory, so the results `Tuner.fit()` returns cannot tell an interrupted
trial from a finished one. The state it saved before stopping them can: it still records them as
RUNNING or PENDING, exactly as `--resume` will find them. A phase counts as finished only when that
state records every trial as ended.

The files are Ray Tune's own (`experiment_state-<time>.json`, the newest by name is current; `tuner.pkl`),
read on a local disk or through pyarrow for remote storage, as `study.storage` does.
"""

from __future__ import annotations

import fnmatch
import json
import pickletools

from study.errors import UserError
from study.storage import exists, file_names, read_bytes

STATE_FILES = "experiment_state-*.json"
TUNER_FILE = "tuner.pkl"
ENDED = ("TERMINATED", "ERROR")  # a trial that finished, was stopped by its scheduler, or failed after its retries


class DamagedState(UserError):
    """Ray Tune's saved state of an experiment cannot be read: the experiment cannot be resumed."""


def _damaged(path: str, file: str, problem: str) -> DamagedState:
    return DamagedState(
        f"The saved state of the experiment at {path} is damaged: {file} {problem}. Ray Tune cannot continue "
        f"it, so --resume would fail every time. Start the study again under another --name; the trial "
        f"folders in {path} are left as they are."
    )


def newest_state_file(path: str) -> str | None:
    """The name of the experiment state Ray Tune would restore from, None when it saved none."""
    matching = fnmatch.filter(file_names(path), STATE_FILES)
    return max(matching) if matching else None


def saved_trial_statuses(path: str) -> dict[str, str]:
    """Trial id -> status (PENDING, RUNNING, PAUSED, TERMINATED, ERROR) as Ray Tune last saved them in `path`."""
    name = newest_state_file(path)
    if name is None:
        return {}
    try:
        trials = [json.loads(entry[0]) for entry in json.loads(read_bytes(f"{path}/{name}"))["trial_data"]]
        return {trial["trial_id"]: trial["status"] for trial in trials}
    except OSError as error:
        raise _damaged(path, name, f"cannot be read ({error})") from None
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise _damaged(path, name, f"is not a whole experiment state ({type(error).__name__}: {error})") from None


def every_trial_ended(path: str, expected: int) -> bool:
    """Whether the state saved in `path` holds at least `expected` trials and records each as ended."""
    statuses = saved_trial_statuses(path)
    return len(statuses) >= expected and all(status in ENDED for status in statuses.values())


def check_restorable(path: str) -> None:
    """A DamagedState unless Ray Tune's `tuner.pkl` and newest experiment state in `path` read whole.

    The pickle is walked opcode by opcode, never loaded: a truncated or overwritten file fails the walk
    and nothing in it runs.
    """
    if not exists(f"{path}/{TUNER_FILE}"):
        raise _damaged(path, TUNER_FILE, "is missing")
    try:
        for _ in pickletools.genops(read_bytes(f"{path}/{TUNER_FILE}")):
            pass
    except OSError as error:
        raise _damaged(path, TUNER_FILE, f"cannot be read ({error})") from None
    except ValueError as error:
        raise _damaged(path, TUNER_FILE, f"is truncated or overwritten ({error})") from None
    if newest_state_file(path) is not None:
        saved_trial_statuses(path)
