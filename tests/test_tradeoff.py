"""The accuracy-vs-energy Pareto plot shows each study's best model, from the one count the comparison table uses.

Fast: a hand-made study whose best epoch is not its trial's last; the operation counter is replaced by one
that counts each checkpoint file by its bytes, so the test can tell which count the plot read and whether it
counted again.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import pandas as pd
import pytest

import analysis.operations
import analysis.tradeoff
from analysis.experiment import ArchitectureResult, Trial
from analysis.operations import checkpoint_operations
from analysis.tradeoff import best_point, tradeoff_figure, trial_points, with_best
from study.energy import HOROWITZ_FLOAT32
from study.invocation import RecordedSettings
from study.operations import OperationCount
from study.summary import Architecture, BestModel, Summary, TrialStatus

SAMPLES = 10


def trial(folder: Path, trial_id: str, accuracies: list[float], last_bytes: bytes) -> Trial:
    """A trial whose last checkpoint is a file of `last_bytes` (the fake counter charges one MAC per byte)."""
    checkpoint = folder / f"trial_{trial_id}" / "checkpoint.pth"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(last_bytes)
    history = pd.DataFrame({"epoch": range(1, len(accuracies) + 1), "val_acc": accuracies})
    return Trial(trial_id, {}, TrialStatus.COMPLETED, len(accuracies), {}, history, checkpoint)


def study(folder: Path, best_epoch: int, best_bytes: bytes) -> ArchitectureResult:
    """Trial a: val_acc 0.5, 0.8, 0.6 (last checkpoint 300 bytes); trial b: 0.4, 0.7 (200 bytes); the best model is
    trial a at `best_epoch`, exported as best.pth of `best_bytes`."""
    trials = (trial(folder, "a", [0.5, 0.8, 0.6], b"a" * 300), trial(folder, "b", [0.4, 0.7], b"b" * 200))
    best_checkpoint = folder / "checkpoints" / "scnn" / "best.pth"
    best_checkpoint.parent.mkdir(parents=True)
    best_checkpoint.write_bytes(best_bytes)
    accuracy = [0.5, 0.8, 0.6][best_epoch - 1]
    best = BestModel("a", {}, best_epoch, accuracy, 1.0, str(best_checkpoint), "trial_a/checkpoint", 0.75, 1.0, 100)
    architecture = Architecture("scnn", True, "", best, ())
    summary = Summary("nmnist", False, "val_acc", "max", 3, str(folder), (architecture,))
    return ArchitectureResult("hand", folder, RecordedSettings(data_dir=folder / "data"), summary, architecture, trials, best_checkpoint)


@pytest.fixture
def counter(monkeypatch):
    """Counts each checkpoint as one effective MAC per byte of its file; `counted` lists what it counted."""
    counted = []

    def load(checkpoint, samples, data_dir):
        counted.append(Path(checkpoint).name)
        return SimpleNamespace(model=Path(checkpoint).read_bytes(), inputs=None)

    def count(model, inputs):
        return OperationCount(effective_macs=float(len(model)), effective_acs=0.0, dense=float(len(model)), membrane_updates=0.0,
                              activation_sparsity=0.0, parameters=1, model_bytes=1, samples=SAMPLES)

    monkeypatch.setattr(analysis.operations, "load_with_samples", load)
    monkeypatch.setattr(analysis.operations, "count_operations", count)
    return counted


def drawn(monkeypatch) -> dict:
    """Replaces save_figure so that the drawn figure can be read: {'figure': the matplotlib figure}."""
    kept = {}

    def keep(figure, path):
        kept["figure"] = figure
        return path

    monkeypatch.setattr(analysis.tradeoff, "save_figure", keep)
    return kept


def test_a_best_model_from_an_earlier_epoch_is_on_the_plot_with_the_tables_count(tmp_path, counter, monkeypatch):
    experiment = study(tmp_path, best_epoch=2, best_bytes=b"x" * 250)  # the epoch-2 checkpoint: 250 MACs
    cache = tmp_path / ".cache"
    table_count = checkpoint_operations(experiment.best_checkpoint, SAMPLES, experiment.data_dir, cache)  # what the table shows
    points = trial_points(experiment, SAMPLES, experiment.data_dir, cache, HOROWITZ_FLOAT32)
    assert [(p.trial_id, p.epoch, p.accuracy) for p in points] == [("a", 3, 0.6), ("b", 2, 0.7)]  # last checkpoints only
    assert counter == ["best.pth", "checkpoint.pth", "checkpoint.pth"]

    best = best_point(experiment, SAMPLES, experiment.data_dir, cache, HOROWITZ_FLOAT32)
    assert counter == ["best.pth", "checkpoint.pth", "checkpoint.pth"]  # read from the cache: not counted twice
    assert best.best and (best.trial_id, best.epoch, best.accuracy) == ("a", 2, 0.8)
    assert best.energy_pj == HOROWITZ_FLOAT32.energy_pj(table_count) == 250 * 4.6

    figure = drawn(monkeypatch)
    artifact = tradeoff_figure(points, tmp_path / "comparison", HOROWITZ_FLOAT32, [best])
    axis = figure["figure"].axes[0]
    stars = [c for c in axis.collections if "best model" in str(c.get_label())]
    assert len(stars) == 1 and stars[0].get_offsets().tolist() == [[250 * 4.6, 0.8]]
    circled = next(c for c in axis.collections if c.get_label() == "Pareto front, all points").get_offsets().tolist()
    assert [250 * 4.6, 0.8] in circled  # the best model takes part in the front: 0.8 beats both trials' last epochs
    caption = " ".join(artifact.caption.split())
    assert "for 2 trials of 1 study, each at its last checkpoint" in caption
    assert "stars: each study's best model, the checkpoint the comparison table and the writeup count" in caption
    assert "1 of them is from an earlier epoch than the trial's last and drawn beside that trial's last checkpoint" in caption
    plt.close("all")


def test_a_best_model_that_is_its_trials_last_checkpoint_marks_that_point(tmp_path, counter, monkeypatch):
    experiment = study(tmp_path, best_epoch=3, best_bytes=b"a" * 300)  # best.pth is trial a's last checkpoint, copied
    cache = tmp_path / ".cache"
    checkpoint_operations(experiment.best_checkpoint, SAMPLES, experiment.data_dir, cache)
    points = trial_points(experiment, SAMPLES, experiment.data_dir, cache, HOROWITZ_FLOAT32)
    best = best_point(experiment, SAMPLES, experiment.data_dir, cache, HOROWITZ_FLOAT32)
    assert counter == ["best.pth", "checkpoint.pth"]  # trial a's last checkpoint has best.pth's bytes: one count for both
    merged = with_best(points, [best])
    assert len(merged) == 2 and [p.best for p in merged] == [True, False] and merged[0] == best

    figure = drawn(monkeypatch)
    artifact = tradeoff_figure(points, tmp_path / "comparison", HOROWITZ_FLOAT32, [best])
    stars = [c for c in figure["figure"].axes[0].collections if "best model" in str(c.get_label())]
    assert stars[0].get_offsets().tolist() == [[300 * 4.6, 0.6]]
    caption = " ".join(artifact.caption.split())
    assert "for 2 trials of 1 study" in caption and "each is its trial's last checkpoint" in caption
    plt.close("all")


def test_without_best_models_the_plot_is_the_trials_alone(tmp_path, counter, monkeypatch):
    experiment = study(tmp_path, best_epoch=2, best_bytes=b"x" * 250)
    points = trial_points(experiment, SAMPLES, experiment.data_dir, tmp_path / ".cache", HOROWITZ_FLOAT32)
    figure = drawn(monkeypatch)
    artifact = tradeoff_figure(points, tmp_path / "comparison", HOROWITZ_FLOAT32)
    assert not [c for c in figure["figure"].axes[0].collections if "best model" in str(c.get_label())]
    assert "stars" not in artifact.caption
    plt.close("all")
