"""After the searches: each architecture's best configuration trained again with new seeds, and what that says.

One search picks its best trial on validation accuracy, from one seed: its test accuracy is one draw,
and selecting the maximum over trials flatters it. The repeats train the chosen configuration from
scratch K times with seeds the search never used, each tested once at its best validation epoch, so
each architecture's test accuracy comes with a mean, a standard deviation and a 95% confidence
interval; each pair of architectures, with the difference of their accuracies (paired by seed) and a
paired test on the same test samples (study.statistics.compare).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np

from study.config import ARCH_KEY, REPEAT_KEY, SEED_KEY
from study.statistics import compare, mean_interval
from study.summary import Architecture, Comparison, RepeatRecord

# A repeat's seeds: the study's seed plus these offsets (the search itself uses the study's seed).
FIRST_REPEAT_SEED = 1000


def repeat_configs(architectures: dict[str, Architecture], repeats: int, seed: int) -> list[dict]:
    """The repeats' configs: every architecture's best configuration with repeat k's seed (the same k-th seed for all)."""
    return [
        {**architecture.best.config, ARCH_KEY: arch, SEED_KEY: seed + FIRST_REPEAT_SEED + k, REPEAT_KEY: k}
        for arch, architecture in architectures.items()
        if architecture.best is not None
        for k in range(repeats)
    ]


def repeat_record(result, max_epochs: int) -> RepeatRecord | None:
    """What one repeat trial found; None when it ended without a test (it raised after its retries)."""
    from study.outcome import trial_status
    from study.trainable import PREDICTIONS_FILE

    metrics = result.metrics or {}
    if result.error is not None or "test_acc" not in metrics or result.checkpoint is None:
        return None
    return RepeatRecord(
        repeat=result.config[REPEAT_KEY],
        seed=result.config[SEED_KEY],
        trial_id=metrics.get("trial_id", Path(result.path).name),
        status=trial_status(result, max_epochs),
        best_epoch=metrics["best_epoch"],
        val_acc=metrics["best_val_acc"],
        test_acc=metrics["test_acc"],
        test_loss=metrics.get("test_loss"),
        test_samples=metrics["test_samples"],
        output_silent=bool(metrics.get("output_silent")),
        predictions=f"{result.checkpoint.path}/{PREDICTIONS_FILE}",
    )


def read_predictions(location: str) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, labels) of a repeat, from its predictions file (a path or a URI)."""
    from study.storage import read_text

    record = json.loads(read_text(location))
    return np.asarray(record["predicted"]), np.asarray(record["labels"])


def with_statistics(architecture: Architecture, repeats: list[RepeatRecord], lost: int = 0) -> Architecture:
    repeats = sorted(repeats, key=lambda record: record.repeat)
    if not repeats:
        return dataclasses.replace(architecture, repeats_lost=lost)
    losses = [record.test_loss for record in repeats if record.test_loss is not None]
    return dataclasses.replace(
        architecture,
        repeats=tuple(repeats),
        repeats_lost=lost,
        test_acc=mean_interval([record.test_acc for record in repeats], bounds=(0.0, 1.0)),
        test_loss=mean_interval(losses) if losses else None,
    )


def compared(first: Architecture, second: Architecture) -> Comparison | None:
    """The paired comparison of two architectures' repeats that share a seed and the same test samples."""
    by_repeat = {record.repeat: record for record in second.repeats}
    pairs = [(record, by_repeat[record.repeat]) for record in first.repeats if record.repeat in by_repeat]
    if not pairs:
        return None
    correct_first, correct_second = [], []
    for ours, theirs in pairs:
        (predicted_a, labels_a), (predicted_b, labels_b) = read_predictions(ours.predictions), read_predictions(theirs.predictions)
        if not np.array_equal(labels_a, labels_b):
            return None  # not the same samples: no paired test
        correct_first.append(predicted_a == labels_a)
        correct_second.append(predicted_b == labels_b)
    paired = compare([a.test_acc for a, _ in pairs], [b.test_acc for _, b in pairs], correct_first, correct_second)
    return Comparison(first.arch, second.arch, paired.difference, paired.test, paired.discordant, paired.p_value, paired.distinguishable)


def with_repeats(architectures: dict[str, Architecture], repeated, max_epochs: int) -> tuple[dict[str, Architecture], tuple[Comparison, ...]]:
    """The architectures with their repeats' records and statistics, and every pair's comparison."""
    records: dict[str, list[RepeatRecord]] = {arch: [] for arch in architectures}
    lost = dict.fromkeys(architectures, 0)
    for result in repeated:
        arch = result.config[ARCH_KEY]
        if arch not in records:
            continue
        record = repeat_record(result, max_epochs)
        if record is None:
            lost[arch] += 1
        else:
            records[arch].append(record)
    updated = {arch: with_statistics(architecture, records[arch], lost[arch]) for arch, architecture in architectures.items()}
    comparisons = [compared(a, b) for a, b in itertools.combinations(updated.values(), 2)]
    return updated, tuple(comparison for comparison in comparisons if comparison is not None)


