"""Interrupted studies continue with --resume: killed drivers, no trial rerun or counted twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drivers import kill_driver, terminated_in_saved_state
from study.run import main

pytestmark = pytest.mark.slow
NUM_SAMPLES, MAX_EPOCHS = 4, 3


def start_study(tmp_path: Path, name: str, num_samples: int = NUM_SAMPLES) -> subprocess.Popen:
    args = [
        "nmnist", "--arch", "cnn", "--repeats", "0", "--synthetic", "--name", name,
        "--num-samples", str(num_samples), "--max-epochs", str(MAX_EPOCHS),
        "--train-limit", "300", "--val-limit", "50", "--test-limit", "50",
        "--data-dir", str(tmp_path / "data"), "--storage", str(tmp_path / "results"),
        "--checkpoints-dir", str(tmp_path / "checkpoints"),
    ]
    log = open(tmp_path / f"{name}.log", "w")
    # A session of its own: the driver's local Ray can be cleaned up with it.
    return subprocess.Popen(
        [sys.executable, "-m", "study.run", *args], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
        # Ray saves the experiment state every 10 s or more; once a second lets a short study be
        # killed right after the state records a finished trial.
        env={**os.environ, "PYTHONUNBUFFERED": "1", "TUNE_GLOBAL_CHECKPOINT_S": "1"},
    )


def wait_for_first_checkpoint(experiment: Path, driver: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    while not list(experiment.glob("trial_*/checkpoint_*")) or not list(experiment.glob("experiment_state-*.json")):
        assert driver.poll() is None, "the study ended before it could be interrupted"
        assert time.monotonic() < deadline, "no checkpoint within 3 minutes"
        time.sleep(0.2)


def wait_for_a_finished_trial_on_record(experiment: Path, driver: subprocess.Popen) -> set[str]:
    """Trials that ran every epoch and that Ray Tune's saved state records as finished."""
    deadline = time.monotonic() + 180
    while True:
        assert driver.poll() is None, "the study ended before it could be interrupted"
        assert time.monotonic() < deadline, "no finished trial recorded within 3 minutes"
        finished = {
            path.parent.name
            for path in experiment.glob("trial_*/result.json")
            if path.read_text().count("\n") == MAX_EPOCHS
            and path.parent.name.removeprefix("trial_") in terminated_in_saved_state(experiment)
        }
        if finished:
            return finished
        time.sleep(0.2)


def resume_and_check(tmp_path: Path, name: str, num_samples: int = NUM_SAMPLES) -> dict:
    assert main(["nmnist", "--name", name, "--storage", str(tmp_path / "results"), "--resume"]) == 0
    summary = json.loads((tmp_path / "results" / name / "summary.json").read_text())
    [architecture] = summary["architectures"]
    ids = [trial["trial_id"] for trial in architecture["trials"]]
    assert len(ids) == num_samples == len(set(ids))  # every trial, none twice
    for trial in architecture["trials"]:
        assert trial["status"] in ("completed", "stopped early", "stalled")
        assert 1 <= trial["epochs"] <= MAX_EPOCHS
    assert summary["synthetic"] is True and architecture["best"]["test_samples"] == 50  # the original settings
    assert (tmp_path / "checkpoints" / name / "cnn" / "best.pth").is_file()
    return summary


def test_a_study_killed_with_sigkill_resumes(tmp_path, ray_runtime):
    driver = start_study(tmp_path, "killed")
    experiment = tmp_path / "results" / "killed"
    finished = wait_for_a_finished_trial_on_record(experiment, driver)
    kill_driver(driver)
    assert not (experiment / "summary.json").exists()
    resume_and_check(tmp_path, "killed")
    for trial in finished:  # finished trials were not run again
        assert (experiment / trial / "result.json").read_text().count("\n") == MAX_EPOCHS


def test_a_study_stopped_with_sigterm_saves_its_state_and_resumes(tmp_path, ray_runtime):
    driver = start_study(tmp_path, "terminated")
    wait_for_first_checkpoint(tmp_path / "results" / "terminated", driver)
    driver.send_signal(signal.SIGTERM)
    assert driver.wait(timeout=120) == 130
    log = (tmp_path / "terminated.log").read_text()
    assert "Continue it with:" in log and "--name terminated" in log and "Traceback" not in log
    resume_and_check(tmp_path, "terminated")


def test_ctrl_c_with_every_trial_started_is_an_interruption_not_a_finished_study(tmp_path, ray_runtime):
    # Both trials run at once (2 CPUs): Ray Tune, stopping them, marks them TERMINATED as if they had finished.
    driver = start_study(tmp_path, "ctrl-c", num_samples=2)
    experiment = tmp_path / "results" / "ctrl-c"
    wait_for_first_checkpoint(experiment, driver)
    os.killpg(driver.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole process group
    assert driver.wait(timeout=120) == 130
    log = (tmp_path / "ctrl-c.log").read_text()
    assert "Continue it with:" in log and "--name ctrl-c" in log and "--resume" in log and "Traceback" not in log
    assert not (experiment / "summary.json").exists()  # no summary of an unfinished study
    assert not (tmp_path / "checkpoints" / "ctrl-c").exists()  # nothing tested or exported
    summary = resume_and_check(tmp_path, "ctrl-c", num_samples=2)
    for trial in summary["architectures"][0]["trials"]:  # each ran on after the interruption
        assert trial["epochs"] >= 1


def test_every_worker_of_a_study_carries_the_quiet_exit_hook(tmp_path):
    # The hook of tests/test_faults.py::test_a_sigterm_landing_in_a_finalizer_... reaches Ray's workers.
    script = (
        "import sys, ray\n"
        "from study.run import connect_ray\n"
        "connect_ray(None, '127.0.0.1')\n"
        "hook = ray.remote(lambda: f'{sys.unraisablehook.__module__}.{sys.unraisablehook.__name__}')\n"
        "print(ray.get(hook.remote()))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert run.stdout.strip().endswith("study.worker_signals._exit_on_swallowed_system_exit"), run.stderr[-2000:]
