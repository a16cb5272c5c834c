"""The repeats' bookkeeping: a repeat that ended without a test, or whose model stayed silent, is said, not hidden."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from analysis.comparison import StudyRow, interval_cell
from analysis.writeup import study_sentence
from study.config import ARCH_KEY, REPEAT_KEY, SEED_KEY
from study.repeats import with_repeats
from study.statistics import SIGN_FLIP, mean_interval
from study.outcome import results_table
from study.summary import Architecture, BestModel, Summary
from study.trainable import PREDICTIONS_FILE


def repeat_result(tmp_path: Path, arch: str, repeat: int, correct: np.ndarray, *, error: str | None = None, silent: bool = False):
    """A finished repeat trial as Ray's Result presents it, with its predictions file on disk."""
    checkpoint = tmp_path / f"{arch}-{repeat}"
    checkpoint.mkdir()
    labels = np.arange(len(correct)) % 10
    predicted = np.where(correct, labels, (labels + 1) % 10)
    (checkpoint / PREDICTIONS_FILE).write_text(json.dumps({"predicted": predicted.tolist(), "labels": labels.tolist()}))
    metrics = {} if error else {
        "epoch": 2, "best_epoch": 2, "best_val_acc": 0.9, "test_acc": float(correct.mean()), "test_loss": 0.5,
        "test_samples": len(correct), "output_silent": silent, "trial_id": f"{arch}{repeat}",
    }
    return SimpleNamespace(
        config={ARCH_KEY: arch, REPEAT_KEY: repeat, SEED_KEY: 1000 + repeat}, metrics=metrics, error=error,
        checkpoint=SimpleNamespace(path=str(checkpoint)), path=str(checkpoint),
    )


def test_lost_and_silent_repeats_are_counted_and_left_out_of_the_statistics(tmp_path):
    rng = np.random.default_rng(0)
    cnn_correct = [rng.random(100) < p for p in (0.9, 0.85, 0.95)]
    results = [repeat_result(tmp_path, "cnn", k, correct) for k, correct in enumerate(cnn_correct)]
    results += [
        repeat_result(tmp_path, "scnn", 0, rng.random(100) < 0.6, silent=True),
        repeat_result(tmp_path, "scnn", 1, rng.random(100) < 0.7),
        repeat_result(tmp_path, "scnn", 2, np.ones(100, bool), error="RuntimeError: out of memory"),
    ]
    architectures = {arch: Architecture(arch, arch == "scnn", "", None, ()) for arch in ("cnn", "scnn")}
    updated, (comparison,) = with_repeats(architectures, results, max_epochs=2)

    cnn, scnn = updated["cnn"], updated["scnn"]
    assert (cnn.repeats_lost, cnn.silent_repeats, cnn.repeats_caveat()) == (0, 0, "")
    assert scnn.repeats_lost == 1 and scnn.silent_repeats == 1 and len(scnn.repeats) == 2
    assert scnn.test_acc.n == 2  # the lost repeat is not averaged in as a zero
    assert scnn.repeats_caveat() == "1 lost (ended without a test, left out), 1 with no output spike on the test split"
    # Only the seeds both architectures tested are paired: repeats 0 and 1.
    assert comparison.difference.n == 2 and comparison.test == SIGN_FLIP
    assert comparison.difference.mean == pytest.approx(np.mean([cnn.repeats[k].test_acc - scnn.repeats[k].test_acc for k in (0, 1)]))

    # The table and the writeup say so.
    cell = interval_cell(scnn.test_acc, len(scnn.repeats), scnn.repeats_caveat())
    assert "2 repeats; 1 lost" in cell and "no output spike" in cell
    assert interval_cell(None, 0, "3 lost (ended without a test, left out)") == "- (3 lost (ended without a test, left out))"
    row = StudyRow(
        name="x", dataset="nmnist", arch="scnn", spiking=True, synthetic=False, best_val_acc=0.7, best_val_loss=0.9,
        test_acc=0.7, test_loss=0.9, test_samples=100, parameters=1, model_bytes=4, time_steps=5, seconds_per_epoch=1.0,
        search_epochs=4, trials=2, effective_macs=0.0, effective_acs=1.0, dense_ops=1.0, membrane_updates=1.0,
        activation_sparsity=0.9, operation_samples=4, energy_pj=1.0, energy_table_name="t", repeats=2,
        repeat_acc=scnn.test_acc, repeats_caveat=scnn.repeats_caveat(),
    )
    assert "(repeats: 1 lost (ended without a test, left out), 1 with no output spike on the test split)" in study_sentence(row)
    best = BestModel("a", {}, 1, 0.7, 0.9, "best.pth", "trial_a/checkpoint_000000", 0.7, 0.9, 100)
    summary = Summary("nmnist", False, "val_acc", "max", 2, "hand", (dataclasses.replace(scnn, best=best),))
    assert "over 2 new seeds (1 lost (ended without a test, left out), 1 with no output spike on the test split)" in results_table(summary)


def test_repeats_that_all_agree_are_said_to_have_no_interval():
    best = BestModel("a", {}, 1, 1.0, 0.1, "best.pth", "trial_a/checkpoint_000000", 1.0, 0.1, 100)
    architecture = Architecture("cnn", False, "", best, (), test_acc=mean_interval([1.0, 1.0, 1.0]))
    table = results_table(Summary("mnist", False, "val_acc", "max", 2, "hand", (architecture,)))
    assert "Repeats: test_acc 100.0% (every run alike: no interval)" in table
    assert interval_cell(architecture.test_acc, 3) == "100.0% (all 3 repeats alike)"
