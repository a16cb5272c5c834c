"""Whole studies under a real Ray runtime: every dataset x architecture, with --smoke --synthetic."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from study.checkpoint import load_model
from study.config import METRIC, MODE
from study.registry import ARCHITECTURES, DATASETS
from study.run import main

# One quick study per dataset in the default run; the rest of the grid is slow.
DEFAULT_PAIRS = {("mnist", "cnn"), ("nmnist", "scnn"), ("dvsgesture", "scnn")}
CASES = [
    pytest.param(dataset, arch, marks=() if (dataset, arch) in DEFAULT_PAIRS else pytest.mark.slow)
    for dataset in sorted(DATASETS)
    for arch in sorted(ARCHITECTURES)
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Data, results and checkpoints shared by the studies of this module (data is written once)."""
    return tmp_path_factory.mktemp("workspace")


def smoke_args(workspace, dataset: str, arch: str) -> list[str]:
    return [
        dataset, "--arch", arch, "--smoke", "--synthetic", "--repeats", "0",  # repeats: test_comparison.py
        "--data-dir", str(workspace / "data"),
        "--storage", str(workspace / "results"),
        "--checkpoints-dir", str(workspace / "checkpoints"),
    ]


def read_summary(workspace, dataset: str, arch: str) -> dict:
    return json.loads((workspace / "results" / f"{dataset}-{arch}-synthetic" / "summary.json").read_text())


@pytest.mark.parametrize("dataset, arch", CASES)
def test_smoke_study_writes_summary_and_a_loadable_best_model(workspace, ray_runtime, capsys, dataset, arch):
    assert main(smoke_args(workspace, dataset, arch)) == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC DATA" in printed and "test_acc" in printed

    summary = read_summary(workspace, dataset, arch)
    assert (summary["dataset"], summary["synthetic"]) == (dataset, True)
    assert (summary["metric"], summary["mode"]) == (METRIC, MODE)
    [architecture] = summary["architectures"]
    assert architecture["arch"] == arch and len(architecture["trials"]) == 2
    for trial in architecture["trials"]:
        assert trial["status"] in ("completed", "stopped early")
        assert 1 <= trial["epochs"] <= 2
        assert {"train_loss", "train_acc", "val_loss", "val_acc", "epoch_seconds"} <= set(trial["last"])
        assert ("spike_rate" in trial["last"]) == ARCHITECTURES[arch].spiking

    best = architecture["best"]
    assert best["val_acc"] >= max(t["last"]["val_acc"] for t in architecture["trials"])  # best over epochs >= last
    test_files = DATASETS[dataset].synthetic_per_class[1] * DATASETS[dataset].source.num_classes
    assert 0.0 <= best["test_acc"] <= 1.0 and best["test_loss"] > 0 and best["test_samples"] == min(50, test_files)
    model, checkpoint = load_model(best["checkpoint"])
    assert (checkpoint["dataset"], checkpoint["arch"], checkpoint["synthetic"]) == (dataset, arch, True)
    assert checkpoint["hyperparams"].items() >= best["config"].items()
    exported = json.loads((workspace / "checkpoints" / f"{dataset}-{arch}-synthetic" / arch / "config.json").read_text())
    assert exported["test_acc"] == best["test_acc"] and exported["synthetic"] is True


def test_fixed_values_reach_every_trial_and_the_journal_records_the_search(workspace, ray_runtime):
    import optuna

    args = smoke_args(workspace, "mnist", "cnn") + ["--name", "fixed", "--fix", "blocks=3", "--fix", "dropout=0.25", "--num-samples", "3"]
    assert main(args) == 0
    summary = json.loads((workspace / "results" / "fixed" / "summary.json").read_text())
    assert all(t["config"]["blocks"] == 3 and t["config"]["dropout"] == 0.25 for t in summary["architectures"][0]["trials"])
    journal = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(workspace / "results" / "fixed" / "optuna.journal")))
    study = optuna.load_study(study_name="cnn", storage=journal)  # one Optuna study per architecture, named after it
    assert len(study.trials) == 3 and all("blocks" not in t.params and "dropout" not in t.params for t in study.trials)
    states = {t.state for t in study.trials}
    assert states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED} and optuna.trial.TrialState.COMPLETE in states
    assert all(t.intermediate_values for t in study.trials)  # per-epoch validation accuracy


def test_resuming_a_finished_study_reruns_nothing(workspace, ray_runtime):
    if not (workspace / "results" / "nmnist-scnn-synthetic").exists():
        assert main(smoke_args(workspace, "nmnist", "scnn")) == 0
    experiment = workspace / "results" / "nmnist-scnn-synthetic"
    before = read_summary(workspace, "nmnist", "scnn")
    reported = {path: path.read_text() for path in experiment.glob("trial_*/result.json")}
    assert main(["nmnist", "--name", "nmnist-scnn-synthetic", "--storage", str(workspace / "results"), "--resume"]) == 0
    after = read_summary(workspace, "nmnist", "scnn")
    trial_ids = lambda summary: sorted(t["trial_id"] for a in summary["architectures"] for t in a["trials"])  # noqa: E731
    assert trial_ids(after) == trial_ids(before)
    assert len(reported) == 2 and all(path.read_text() == text for path, text in reported.items())  # no epoch ran


@pytest.mark.slow
def test_readme_quick_try_runs_as_a_user_types_it(tmp_path):
    """`python -m study.run nmnist --smoke --synthetic` in a fresh folder: own Ray, dashboard on 127.0.0.1, the CNN
    and the spiking CNN compared with their repeats."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    finished = subprocess.run(
        [sys.executable, "-m", "study.run", "nmnist", "--smoke", "--synthetic"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "Ray dashboard: http://127.0.0.1:" in finished.stdout
    assert (tmp_path / "results" / "nmnist-cnn-scnn-synthetic" / "summary.json").is_file()
    assert all((tmp_path / "checkpoints" / "nmnist-cnn-scnn-synthetic" / arch / "best.pth").is_file() for arch in ("cnn", "scnn"))
    assert (tmp_path / "data" / "synthetic" / "SYNTHETIC").is_file()
