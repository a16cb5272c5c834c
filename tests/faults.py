"""Trainables that inject faults into real trials (shipped to Ray workers by value, see test_faults)."""

from __future__ import annotations

import os
from pathlib import Path

from ray import tune

from study.trainable import train_trial


def faulty_trial(config: dict, settings, marker_dir: str) -> None:
    """The first trial to start raises after every report; every other raises once, after epoch 1.

    Each raise comes after the epoch's checkpoint, as a CUDA out-of-memory error would.
    """
    folder = Path(marker_dir)
    trial_id = tune.get_context().get_trial_id()
    claim = folder / f"claim-{trial_id}"
    claim.write_text(trial_id)
    try:
        os.link(claim, folder / "first")  # atomic: exactly one trial creates "first", with its id inside
    except FileExistsError:
        pass
    always = (folder / "first").read_text() == trial_id
    failed_once = folder / f"failed-{trial_id}"
    real_report = tune.report

    def report_then_fail(metrics, checkpoint=None):
        # Equal scores for every trial: ASHA then stops none, so each injected fault plays out.
        real_report({**metrics, "val_acc": 0.5}, checkpoint=checkpoint)
        if always or not failed_once.exists():
            failed_once.touch()
            raise RuntimeError("CUDA out of memory (injected by the test)")

    tune.report = report_then_fail
    try:
        train_trial(config, settings)
    finally:
        tune.report = real_report


def broken_trial(config: dict, settings) -> None:
    """A trial that fails before its first epoch, as one with a bug in its set-up would."""
    raise RuntimeError("broken before the first epoch (injected by the test)")
