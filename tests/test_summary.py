"""summary.json is one typed, versioned record: written by the study, read back by the analysis."""

from __future__ import annotations

import json
import math

import pytest

from study.errors import UserError
from study.summary import SUMMARY_VERSION, BestModel, Summary, TrialRecord, TrialStatus, json_number, read_summary


def a_summary() -> Summary:
    trials = (
        TrialRecord("a", {"lr": 1e-3}, TrialStatus.COMPLETED, 3, {"val_acc": 0.9, "val_loss": 0.3}, None, "/x/trial_a"),
        TrialRecord("b", {"lr": 1e-1}, TrialStatus.DIVERGED, 1, {"val_acc": 0.0, "val_loss": json_number(math.nan)}, None, "/x/trial_b"),
    )
    best = BestModel("a", {"lr": 1e-3}, 3, 0.9, 0.3, "/c/best.pth", "/x/trial_a/checkpoint_000002", 0.88, 0.35, 50)
    return Summary("nmnist", "scnn", False, "val_acc", "max", 3, "/x", best, trials)


def test_a_summary_reads_back_as_it_was_written():
    summary = a_summary()
    text = summary.to_json()
    assert json.loads(text)["version"] == SUMMARY_VERSION
    assert json.loads(text)["trials"][1]["last"]["val_loss"] is None  # NaN is not JSON
    again = read_summary(text, "summary.json")
    assert again == summary
    assert again.trials[1].status is TrialStatus.DIVERGED and [t.trial_id for t in again.trials_with(TrialStatus.DIVERGED)] == ["b"]


def test_a_summary_written_before_the_version_field_reads_as_version_1():
    record = json.loads(a_summary().to_json())
    del record["version"]
    assert read_summary(json.dumps(record), "old.json").best.test_acc == 0.88


@pytest.mark.parametrize(
    "change, says",
    [
        (lambda record: record.update(version=SUMMARY_VERSION + 1), f"has summary layout version {SUMMARY_VERSION + 1}"),
        (lambda record: record["trials"][0].update(status="vanished"), "is not a summary this snn-study can read"),
        (lambda record: record.pop("trials"), "is not a summary this snn-study can read"),
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
