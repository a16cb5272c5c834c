"""Figures of the searches themselves: learning curves, where ASHA stopped, and what the hyperparameters did."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from analysis.artifacts import Artifact, save_figure
from analysis.content import plural
from analysis.experiment import ArchitectureResult, Trial
from analysis.hyperparameters import IMPORTANCE_EVALUATOR, Importance, search_of
from study.config import METRIC
from study.status import FAILED_TO_LEARN, TrialStatus

SECTION = "Study"
# Where a trial ended, by how it ended: every TrialStatus has one (tests/test_analysis_report.py checks).
STATUS_COLOURS = {
    TrialStatus.COMPLETED: "tab:green",
    TrialStatus.STOPPED_EARLY: "tab:orange",
    TrialStatus.DIVERGED: "tab:red",
    TrialStatus.SILENT: "tab:purple",
    TrialStatus.SATURATED: "tab:brown",
    TrialStatus.STALLED: "tab:olive",
    TrialStatus.ERROR: "black",
}
# Statuses of trials that stopped themselves while their loss was finite: the caption names each that occurred.
UNABLE_TO_LEARN = tuple(status for status in FAILED_TO_LEARN if status != TrialStatus.DIVERGED)  # diverged trials have their own marker
BEST_COLOUR = "tab:blue"
AXIS_LABELS = {"val_acc": "validation accuracy", "val_loss": "validation loss"}
SCORE_LABEL = f"best {AXIS_LABELS.get(METRIC, METRIC)}"  # a trial's score: its best epoch


def side_by_side(experiments: list[ArchitectureResult]) -> list[ArchitectureResult]:
    """Conventional studies first, then spiking ones, each group by dataset: the ANN/SNN pairs line up."""
    return sorted(experiments, key=lambda e: (e.spiking, e.dataset, e.arch))


def _legend(figure, statuses: set[str], best_label: str, best_marker: dict) -> None:
    """One legend under the figure: how trials ended (only what occurred) and the best trial's mark."""
    handles = [
        plt.Line2D([], [], color=colour, marker="o", linestyle="", label=status)
        for status, colour in STATUS_COLOURS.items() if status in statuses
    ]
    handles.append(plt.Line2D([], [], color=BEST_COLOUR, label=best_label, **best_marker))
    figure.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize="small")


def learning_curves(experiments: list[ArchitectureResult], out_dir: Path) -> Artifact:
    """Validation accuracy and loss per epoch of every trial, one column per study; a marker where each trial ended."""
    ordered = side_by_side(experiments)
    figure, axes = plt.subplots(2, len(ordered), figsize=(4.5 * len(ordered), 7), squeeze=False, sharex="col", layout="constrained")
    for column, experiment in enumerate(ordered):
        for row, metric in enumerate((METRIC, "val_loss")):
            axis = axes[row, column]
            for trial in experiment.trials:
                _plot_trial(axis, trial, metric, best=trial is experiment.best_trial)
            axis.set_xlabel("epoch")
            axis.set_ylabel(AXIS_LABELS.get(metric, metric))
            axis.grid(alpha=0.3)
            axis.xaxis.get_major_locator().set_params(integer=True)
        axes[0, column].set_title(f"{experiment.title}\n{len(experiment.trials)} trials")
        axes[0, column].axvline(experiment.summary.max_epochs, color="grey", linestyle=":", linewidth=1)
    statuses = {trial.status for experiment in experiments for trial in experiment.trials}
    _legend(figure, statuses, "best trial", {"linewidth": 2.5})
    figure.suptitle("Validation accuracy and loss per epoch (marker: the epoch a trial ended, coloured by how it ended)")
    path = save_figure(figure, out_dir / "learning_curves.png")
    stopped = sum(trial.status == TrialStatus.STOPPED_EARLY for e in experiments for trial in e.trials)
    caption = (
        f"{AXIS_LABELS.get(METRIC, METRIC).capitalize()} (top) and validation loss (bottom) per epoch of all {sum(len(e.trials) for e in experiments)} trials; "
        f"the best trial is thick blue; ASHA stopped {plural(stopped, 'trial')} early (orange markers){_unable_note(experiments)}; dotted: the epoch limit."
    )
    return Artifact(path, caption, SECTION)


def _unable_note(experiments: list[ArchitectureResult]) -> str:
    """'; 3 trials stopped themselves: 2 silent (purple), 1 stalled (olive)', for the UNABLE_TO_LEARN statuses that occurred."""
    counts = {status: sum(trial.status == status for e in experiments for trial in e.trials) for status in UNABLE_TO_LEARN}
    parts = [f"{count} {status} ({STATUS_COLOURS[status].removeprefix('tab:')})" for status, count in counts.items() if count]
    return f"; {plural(sum(counts.values()), 'trial')} stopped themselves: {', '.join(parts)}" if parts else ""


def _plot_trial(axis, trial: Trial, metric: str, best: bool) -> None:
    history = trial.history
    if history.empty or metric not in history:
        return
    colour, width, alpha = (BEST_COLOUR, 2.5, 1.0) if best else ("grey", 1.0, 0.6)
    axis.plot(history["epoch"], history[metric], color=colour, linewidth=width, alpha=alpha, zorder=3 if best else 2)
    last = history.dropna(subset=[metric]).tail(1)
    axis.scatter(last["epoch"], last[metric], color=STATUS_COLOURS[trial.status], s=30, zorder=4, edgecolor="white")


def _positions(values: list) -> tuple[np.ndarray, list[str] | None]:
    """Plot positions of a parameter's values: numbers as they are, categories (str, bool) as 0, 1, ..."""
    if all(isinstance(v, (str, bool)) for v in values if v is not None):
        categories = sorted({v for v in values if v is not None}, key=str)
        return np.array([categories.index(v) if v is not None else np.nan for v in values], dtype=float), [str(c) for c in categories]
    return np.array([np.nan if v is None else float(v) for v in values]), None


def hyperparameter_effects(experiment: ArchitectureResult, out_dir: Path) -> Artifact | None:
    """Each trial's best validation accuracy against each searched hyperparameter; None when nothing varied."""
    search = search_of(experiment)
    if search is None:
        return None
    trials, searched, logs, scores = search.trials, search.values, search.logs, search.scores
    colours = [STATUS_COLOURS.get(trial.status, "black") for trial in trials]
    columns = min(4, len(searched))
    rows = math.ceil(len(searched) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.0 * rows + 0.6), squeeze=False, sharey=True, layout="constrained")
    best = trials.index(experiment.best_trial) if experiment.best_trial in trials else None
    for axis, (name, values) in zip(axes.flat, searched.items()):
        x, categories = _positions(values)
        axis.scatter(x, scores, c=colours, s=30, edgecolor="white", zorder=3)
        if best is not None:
            axis.scatter(x[best], scores[best], marker="*", s=220, color=BEST_COLOUR, zorder=4)
        if categories:
            axis.set_xticks(range(len(categories)), categories)
            axis.set_xlim(-0.5, len(categories) - 0.5)
        elif name in logs:
            # Searched ranges often span less than a decade, where log axes get no labelled ticks of their own.
            axis.set_xscale("log")
            axis.minorticks_off()
            ticks = np.geomspace(np.nanmin(x), np.nanmax(x), 3)
            axis.set_xticks(ticks, [_short(tick) for tick in ticks])
        axis.set_xlabel(name + (" (log scale)" if name in logs else ""))
        axis.grid(alpha=0.3)
    for axis in axes[:, 0]:
        axis.set_ylabel(SCORE_LABEL)
    for axis in list(axes.flat)[len(searched):]:
        axis.set_visible(False)
    _legend(figure, {trial.status for trial in trials}, "best trial", {"marker": "*", "markersize": 12, "linestyle": ""})
    figure.suptitle(f"{experiment.title}: {SCORE_LABEL} of each trial against each searched hyperparameter")
    path = save_figure(figure, out_dir / f"{experiment.name}-hyperparameters.png")
    caption = (
        f"{experiment.title}: each of {len(trials)} trials' {SCORE_LABEL} against the {len(searched)} hyperparameters "
        f"the search varied (colour: how the trial ended; star: the best trial)."
    )
    return Artifact(path, caption, SECTION)


def importance_chart(experiment: ArchitectureResult, importance: Importance, out_dir: Path) -> Artifact:
    """A horizontal bar per searched hyperparameter, largest importance on top."""
    names = list(importance.values)[::-1]
    figure, axis = plt.subplots(figsize=(6, 0.45 * len(names) + 1.2))
    shares = [importance.values[name] for name in names]
    bars = axis.barh(names, shares, color=BEST_COLOUR)
    axis.bar_label(bars, [f"{share:.0%}" for share in shares], padding=3, fontsize="small")
    axis.set_xlabel("share of total importance")
    axis.set_xlim(0, 1)
    axis.grid(axis="x", alpha=0.3)
    axis.set_title(f"{experiment.title}: hyperparameter importance\nfor a high {AXIS_LABELS.get(METRIC, METRIC)}")
    path = save_figure(figure, out_dir / f"{experiment.name}-importance.png")
    caption = (
        f"{experiment.title}: importance of each hyperparameter by {importance.method} ({IMPORTANCE_EVALUATOR}), "
        f"from {plural(importance.trials, 'trial')}{importance.caution}."
    )
    return Artifact(path, caption, SECTION)


def parallel_coordinates(experiment: ArchitectureResult, out_dir: Path) -> Artifact | None:
    """One line per trial through normalized axes of the searched hyperparameters, coloured by its score."""
    search = search_of(experiment)
    if search is None:
        return None
    trials, searched, logs, scores = search.trials, search.values, search.logs, search.scores
    columns, ticks = [], []
    for name, values in searched.items():
        x, categories = _positions(values)
        if name in logs:
            x = np.log10(x)
        low, high = np.nanmin(x), np.nanmax(x)
        columns.append((x - low) / (high - low))
        ticks.append(categories or [_short(_unlog(low, name in logs)), _short(_unlog(high, name in logs))])
    lows, highs = scores.min(), scores.max()
    columns.append((scores - lows) / (highs - lows) if highs > lows else np.full(len(scores), 0.5))
    ticks.append([_short(lows), _short(highs)])
    names = [*searched, SCORE_LABEL]
    table = np.stack(columns, axis=1)  # [trials, axes]; NaN where a conditional parameter was absent
    colour_map = plt.get_cmap("viridis")
    norm = plt.Normalize(lows, highs if highs > lows else lows + 1e-9)
    figure, axis = plt.subplots(figsize=(max(6, 1.3 * len(names)), 4.5))
    for row, score in sorted(zip(table, scores), key=lambda pair: pair[1]):  # best drawn last, on top
        axis.plot(range(len(names)), row, color=colour_map(norm(score)), linewidth=1.5, alpha=0.85)
    for index, labels in enumerate(ticks):
        axis.axvline(index, color="grey", linewidth=0.8)
        for position, label in zip(np.linspace(0, 1, len(labels)), labels):
            axis.annotate(
                label, (index, position), xytext=(3, 0), textcoords="offset points", fontsize="x-small", va="center",
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8}, zorder=5,
            )
    axis.set_xticks(range(len(names)), [n + (" (log)" if n in logs else "") for n in names], rotation=30, ha="right")
    axis.set_yticks([0, 1], ["min", "max"])
    axis.set_ylim(-0.05, 1.05)
    figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=colour_map), ax=axis, label=SCORE_LABEL)
    axis.set_title(f"{experiment.title}: parallel coordinates of {len(trials)} trials")
    path = save_figure(figure, out_dir / f"{experiment.name}-parallel.png")
    caption = (
        f"{experiment.title}: each trial as a line through its hyperparameters (each axis scaled from the smallest to the "
        f"largest value tried; categories in order), coloured by its {SCORE_LABEL}."
    )
    return Artifact(path, caption, SECTION)


def _unlog(value: float, log: bool) -> float:
    return 10**value if log else value


def _short(value: float) -> str:
    return f"{value:.3g}"
