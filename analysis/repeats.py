"""Figures of the repeats: each architecture's best configuration trained again with new seeds."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from analysis.artifacts import Artifact, save_figure
from analysis.comparison import SECTION
from analysis.content import plural
from analysis.experiment import ArchitectureResult
from analysis.study_figures import AXIS_LABELS, side_by_side
from study.config import METRIC


def repeated(experiments: list[ArchitectureResult]) -> list[ArchitectureResult]:
    return [experiment for experiment in side_by_side(experiments) if experiment.architecture.repeats]


def repeat_accuracy_figure(experiments: list[ArchitectureResult], out_dir: Path) -> Artifact | None:
    """Every repeat's test accuracy per study, with the mean and its 95% confidence interval; None without repeats."""
    shown = repeated(experiments)
    if not shown:
        return None
    figure, axis = plt.subplots(figsize=(max(5.0, 1.8 * len(shown) + 1.5), 4.5))
    for position, experiment in enumerate(shown):
        architecture = experiment.architecture
        accuracies = [100 * record.test_acc for record in architecture.repeats]
        axis.scatter(np.full(len(accuracies), position) + np.linspace(-0.08, 0.08, len(accuracies)), accuracies, color="grey", s=25, zorder=3)
        interval = architecture.test_acc
        if interval.low is not None:
            axis.errorbar(position, 100 * interval.mean, yerr=[[100 * (interval.mean - interval.low)], [100 * (interval.high - interval.mean)]],
                          fmt="o", color="tab:blue", capsize=8, markersize=8, zorder=4)
        else:
            axis.scatter(position, 100 * interval.mean, color="tab:blue", s=60, zorder=4)
    values = [100 * record.test_acc for experiment in shown for record in experiment.architecture.repeats]
    values += [100 * bound for experiment in shown for bound in (experiment.architecture.test_acc.low, experiment.architecture.test_acc.high) if bound is not None]
    axis.set_ylim(max(0.0, min(values) - 5), min(100.0, max(values) + 5))
    axis.set_xticks(range(len(shown)), [experiment.title for experiment in shown], rotation=15, ha="right")
    axis.set_ylabel("test accuracy (%)")
    axis.grid(axis="y", alpha=0.3)
    synthetic = " (synthetic data)" if any(experiment.synthetic for experiment in shown) else ""
    axis.set_title(f"Test accuracy of the repeats: mean and 95% CI{synthetic}")
    path = save_figure(figure, Path(out_dir) / "repeat_accuracy.png")
    counts = ", ".join(f"{experiment.title} {len(experiment.architecture.repeats)}" for experiment in shown)
    caption = (
        f"Test accuracy of each architecture's best configuration trained again with new seeds (grey: each repeat; blue: "
        f"their mean with its 95% Student-t confidence interval; repeats: {counts})."
    )
    return Artifact(path, caption, SECTION)


def repeat_curves_figure(experiments: list[ArchitectureResult], out_dir: Path) -> Artifact | None:
    """The repeats' validation accuracy per epoch: their mean as a line, their range as a band; None without repeats."""
    shown = repeated(experiments)
    if not shown:
        return None
    figure, axis = plt.subplots(figsize=(7.5, 4.5))
    for index, experiment in enumerate(shown):
        histories = [history for history in experiment.repeat_histories() if METRIC in history and not history.empty]
        if not histories:
            continue
        epochs = min(len(history) for history in histories)
        values = np.stack([history[METRIC].to_numpy()[:epochs] for history in histories])  # [repeats, epochs]
        steps = np.arange(1, epochs + 1)
        colour = f"C{index}"
        axis.plot(steps, 100 * values.mean(0), color=colour, linewidth=2, label=f"{experiment.title} ({plural(len(histories), 'repeat')})")
        axis.fill_between(steps, 100 * values.min(0), 100 * values.max(0), color=colour, alpha=0.2)
    axis.set_xlabel("epoch")
    axis.set_ylabel(f"{AXIS_LABELS.get(METRIC, METRIC)} (%)")
    axis.xaxis.get_major_locator().set_params(integer=True)
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    synthetic = " (synthetic data)" if any(experiment.synthetic for experiment in shown) else ""
    axis.set_title(f"Learning curves of the repeats{synthetic}")
    path = save_figure(figure, Path(out_dir) / "repeat_curves.png")
    caption = "Validation accuracy per epoch of the repeats of each best configuration: the mean as a line, the lowest to the highest repeat as a band."
    return Artifact(path, caption, SECTION)
