"""One command compares architectures: searches side by side, repeats with new seeds, statistics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from drivers import kill_driver, terminated_in_saved_state
from study.run import main
from study.statistics import SIGN_FLIP

pytestmark = pytest.mark.slow
ARGS = ["mnist", "--synthetic", "--arch", "cnn,scnn", "--num-samples", "2", "--max-epochs", "2", "--repeats", "2",
        "--fix", "num_steps=5", "--train-limit", "200", "--val-limit", "50", "--test-limit", "50"]


def where(tmp_path: Path) -> list[str]:
    return ["--data-dir", str(tmp_path / "data"), "--storage", str(tmp_path / "results"), "--checkpoints-dir", str(tmp_path / "checkpoints")]


def test_a_comparison_searches_repeats_and_compares_with_intervals(tmp_path, ray_runtime):
    assert main([*ARGS, "--name", "both", *where(tmp_path)]) == 0
    experiment = tmp_path / "results" / "both"
    summary = json.loads((experiment / "summary.json").read_text())
    assert [a["arch"] for a in summary["architectures"]] == ["cnn", "scnn"] and summary["repeats"] == 2
    for architecture in summary["architectures"]:
        assert len(architecture["trials"]) == 2  # the same budget for each
        assert (tmp_path / "checkpoints" / "both" / architecture["arch"] / "best.pth").is_file()
        repeats = architecture["repeats"]
        assert sorted(r["seed"] for r in repeats) == [1000, 1001] and all(r["status"] == "completed" for r in repeats)
        accuracy = architecture["test_acc"]
        assert accuracy["n"] == 2 and accuracy["mean"] == pytest.approx(sum(r["test_acc"] for r in repeats) / 2)
        if accuracy["std"] == 0:  # both repeats alike (100% is common on synthetic data): no interval claimed
            assert accuracy["low"] is None and accuracy["high"] is None
        else:
            assert 0 <= accuracy["low"] <= accuracy["mean"] <= accuracy["high"] <= 1
        for repeat in repeats:
            predictions = json.loads(Path(repeat["predictions"]).read_text())
            assert len(predictions["predicted"]) == len(predictions["labels"]) == repeat["test_samples"] == 50
    assert summary["architectures"][0]["saw"] == "each image once"
    assert summary["architectures"][1]["saw"] == "each image as the same input current at every step over 5 time steps"
    [comparison] = summary["comparisons"]
    assert (comparison["first"], comparison["second"], comparison["test"]) == ("cnn", "scnn", SIGN_FLIP)
    assert 0 <= comparison["p_value"] <= 1 and comparison["difference"]["n"] == 2
    # Both searches ran side by side, each its own Optuna study in the one journal.
    journal = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(experiment / "optuna.journal")))
    assert sorted(study.study_name for study in optuna.get_all_study_summaries(journal)) == ["cnn", "scnn"]
    starts = sorted((json.loads((trial / "result.json").read_text().splitlines()[0])["date"], trial.name) for trial in experiment.glob("trial_*"))
    first_two = [json.loads((experiment / name / "params.json").read_text())["arch"] for _, name in starts[:2]]
    assert sorted(first_two) == ["cnn", "scnn"]  # handed out in turn, not one search after the other


def test_a_comparison_killed_during_its_repeats_finishes_with_resume(tmp_path, ray_runtime):
    log = open(tmp_path / "driver.log", "w")
    driver = subprocess.Popen(
        [sys.executable, "-m", "study.run", *ARGS, "--name", "killed", *where(tmp_path)], cwd=tmp_path, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1"},
    )
    experiment = tmp_path / "results" / "killed"
    deadline = time.monotonic() + 600
    while not terminated_in_saved_state(experiment / "repeats"):
        assert driver.poll() is None, "the comparison ended before a repeat finished"
        assert time.monotonic() < deadline, "no repeat finished within 10 minutes"
        time.sleep(0.2)
    kill_driver(driver)
    assert not (experiment / "summary.json").exists()
    searched = {path: path.read_text() for path in experiment.glob("trial_*/result.json")}
    finished = {path: path.read_text() for path in (experiment / "repeats").glob("repeat_*/result.json") if path.parent.name.rsplit("_", 1)[1] in terminated_in_saved_state(experiment / "repeats")}
    assert finished

    assert main(["mnist", "--name", "killed", "--storage", str(tmp_path / "results"), "--resume"]) == 0
    summary = json.loads((experiment / "summary.json").read_text())
    assert [len(a["repeats"]) for a in summary["architectures"]] == [2, 2] and len(summary["comparisons"]) == 1
    assert all(path.read_text() == text for path, text in searched.items())  # no search trial ran again
    assert all(path.read_text() == text for path, text in finished.items())  # nor a finished repeat
