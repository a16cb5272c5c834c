"""summary.json is one typed, versioned record: written by the study, read back by the analysis."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from study.errors import UserError
from study.statistics import MCNEMAR, mean_interval, paired_difference
from study.summary import (
    SUMMARY_VERSION,
    Architecture,
    BestModel,
    Comparison,
    RepeatRecord,
    Summary,
    TrialRecord,
    TrialStatus,
    json_number,
    read_summary,
)


def a_summary() -> Summary:
    trials = (
        TrialRecord("a", {"lr": 1e-3}, TrialStatus.COMPLETED, 3, {"val_acc": 0.9, "val_loss": 0.3}, None, "/x/trial_a"),
        TrialRecord("b", {"lr": 1e-1}, TrialStatus.DIVERGED, 1, {"val_acc": 0.0, "val_loss": json_number(math.nan)}, None, "/x/trial_b"),
    )
    best = BestModel("a", {"lr": 1e-3}, 3, 0.9, 0.3, "/c/scnn/best.pth", "/x/trial_a/checkpoint_000002", 0.88, 0.35, 50)
    repeats = tuple(
        RepeatRecord(k, 1000 + k, f"r{k}", TrialStatus.COMPLETED, 3, 0.9, acc, 0.3, 50, False, f"/x/repeats/r{k}/checkpoint_000002/test_predictions.json")
        for k, acc in enumerate((0.86, 0.9))
    )
    scnn = Architecture("scnn", True, "the events binned into 25 frames", best, trials, repeats, mean_interval([0.86, 0.9]), mean_interval([0.3, 0.3]))
    cnn = Architecture("cnn", False, "all events summed", None, ())
    comparison = Comparison("scnn", "cnn", paired_difference([0.86, 0.9], [0.8, 0.82]), MCNEMAR, (5, 1), 0.22, False)
    return Summary("nmnist", False, "val_acc", "max", 3, "/x", (scnn, cnn), repeats=2, comparisons=(comparison,))


def test_a_summary_reads_back_as_it_was_written():
    summary = a_summary()
    text = summary.to_json()
    record = json.loads(text)
    assert record["version"] == SUMMARY_VERSION
    assert record["architectures"][0]["trials"][1]["last"]["val_loss"] is None  # NaN is not JSON
    assert record["architectures"][0]["test_acc"]["low"] < 0.88 < record["architectures"][0]["test_acc"]["high"]
    again = read_summary(text, "summary.json")
    assert again == summary
    assert again.trials[1].status is TrialStatus.DIVERGED and [t.trial_id for t in again.trials_with(TrialStatus.DIVERGED)] == ["b"]
    assert again.of("scnn").repeats[1].test_acc == 0.9 and again.comparisons[0].discordant == (5, 1)


def test_a_summary_of_the_first_layout_reads_as_one_architecture():
    """Summaries written before comparisons (version 1, or no version field) still load."""
    trial = {"trial_id": "a", "config": {}, "status": "completed", "epochs": 3, "last": {"val_acc": 0.9}, "error": None, "path": "/x/trial_a"}
    best = {"trial_id": "a", "config": {}, "epoch": 3, "val_acc": 0.9, "val_loss": 0.3, "checkpoint": "/c/best.pth",
            "trial_checkpoint": "/x/trial_a/checkpoint_000002", "test_acc": 0.88, "test_loss": 0.35, "test_samples": 50}
    old = {"dataset": "nmnist", "arch": "scnn", "synthetic": False, "metric": "val_acc", "mode": "max", "max_epochs": 3,
           "experiment": "/x", "best": best, "trials": [trial]}
    for record in (old, {**old, "version": 1}):
        summary = read_summary(json.dumps(record), "old.json")
        [architecture] = summary.architectures
        assert architecture.arch == "scnn" and architecture.spiking and architecture.best.test_acc == 0.88
        assert architecture.repeats == () and architecture.test_acc is None and summary.comparisons == ()


@pytest.mark.parametrize(
    "change, says",
    [
        (lambda record: record.update(version=SUMMARY_VERSION + 1), f"has summary layout version {SUMMARY_VERSION + 1}"),
        (lambda record: record["architectures"][0]["trials"][0].update(status="vanished"), "is not a summary this snn-study can read"),
        (lambda record: record.pop("architectures"), "is not a summary this snn-study can read"),
    ],
)
def test_a_summary_of_another_layout_is_refused_with_the_reason(change, says):
    record = json.loads(a_summary().to_json())
    change(record)
    with pytest.raises(UserError, match=says):
        read_summary(json.dumps(record), "summary.json")


def test_a_file_that_is_not_json_is_refused():
    with pytest.raises(UserError, match="summary.json is not a summary"):
        read_summary("{truncated", "summary.json")


def test_the_results_table_shows_the_energy_of_an_energy_aware_search():
    from study.outcome import architecture_table

    trials = (
        TrialRecord("a", {"lr": 1e-3}, TrialStatus.COMPLETED, 3, {"val_acc": 0.9, "val_loss": 0.3, "energy_pj": 4.2e6}, None, "/x/trial_a"),
        TrialRecord("b", {"lr": 1e-2}, TrialStatus.STOPPED_EARLY, 1, {"val_acc": 0.5, "val_loss": 1.0}, None, "/x/trial_b"),
    )
    lines = architecture_table(Architecture("scnn", True, "", None, trials), top=10)
    assert "energy nJ" in lines[1]
    assert " 4200 " in lines[2] and lines[3].split()[-2] == "-"  # trial b reported no estimate
    assert "energy nJ" not in architecture_table(a_summary().architectures[0], top=10)[1]  # accuracy alone: no column


def test_the_results_table_states_the_difference_interval_and_when_the_two_tests_disagree():
    from study.outcome import results_table

    summary = a_summary()
    line = next(line for line in results_table(summary).splitlines() if line.startswith("scnn - cnn"))
    low, high = summary.comparisons[0].difference.low, summary.comparisons[0].difference.high
    assert f"95% CI {100 * low:+.1f} to {100 * high:+.1f} over 2 seeds" in line and "indistinguishable" in line
    assert "not stable across seeds" not in line  # McNemar agrees (p = 0.22)
    disagreeing = dataclasses.replace(summary, comparisons=(dataclasses.replace(summary.comparisons[0], p_value=0.01),))
    line = next(line for line in results_table(disagreeing).splitlines() if line.startswith("scnn - cnn"))
    assert "indistinguishable" in line and "the test samples differ by the paired test, but the difference is not stable across seeds" in line
