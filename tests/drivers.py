"""Study drivers run as their own processes by the tests, killed as a crash would, and what Ray had saved by then."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path


def terminated_in_saved_state(experiment: Path) -> set[str]:
    """Trial ids the experiment state Ray Tune last saved (in `experiment`) records as finished."""
    states = sorted(experiment.glob("experiment_state-*.json"))
    if not states:
        return set()
    try:
        trials = [json.loads(entry[0]) for entry in json.loads(states[-1].read_text())["trial_data"]]
    except (ValueError, KeyError, OSError):  # caught mid-write: look again
        return set()
    return {trial["trial_id"] for trial in trials if trial.get("status") == "TERMINATED"}


def kill_driver(driver: subprocess.Popen) -> None:
    """SIGKILL the driver, then what is left of its own Ray (it ran in a session of its own)."""
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    try:
        os.killpg(driver.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
