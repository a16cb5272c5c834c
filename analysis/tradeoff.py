"""Accuracy against operations per sample over every trial of every study, with the Pareto front marked.

Each trial's last checkpoint is run on a few test samples to count its operations; the counts are
cached per study (keyed by checkpoint file and sample count), so a second report reuses them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib.pyplot as plt

from analysis.artifacts import Artifact, save_figure
from analysis.comparison import SECTION
from analysis.content import plural
from analysis.experiment import Experiment, Trial
from analysis.operations import count_operations
from analysis.samples import load_with_samples
from analysis.study_figures import AXIS_LABELS
from study.config import METRIC
from study.files import replaced_atomically

MARKERS = "osD^vP*X"


@dataclass(frozen=True)
class TrialPoint:
    study: str  # the experiment's title
    dataset: str
    trial_id: str
    accuracy: float  # METRIC at the trial's last epoch: the epoch of the checkpoint whose operations were counted
    ops: float  # MACs + SynOps per test sample


def pareto_front(ops: list[float], accuracy: list[float]) -> list[bool]:
    """Which points no other point beats: none has at most as many ops and at least the accuracy, one of them strictly."""
    return [
        not any(
            (o <= ops[i] and a >= accuracy[i]) and (o < ops[i] or a > accuracy[i])
            for o, a in zip(ops, accuracy)
        )
        for i in range(len(ops))
    ]


def _last_accuracy(trial: Trial) -> float | None:
    values = trial.history[METRIC].dropna() if METRIC in trial.history else []
    return float(values.iloc[-1]) if len(values) else trial.last.get(METRIC)


def _stamp(path: Path) -> list[int]:
    status = path.stat()
    return [status.st_mtime_ns, status.st_size]


def trial_operations(
    experiment: Experiment, samples: int, data_dir: Path, cache_dir: Path, on_trial: Callable[[], None] = lambda: None
) -> list[TrialPoint]:
    """One point per trial that saved a checkpoint; `on_trial` is called after each trial (a progress bar)."""
    cache_file = cache_dir / f"{experiment.name}-operations.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):  # absent or unreadable: count again
        cache = {}
    points = []
    for trial in experiment.trials:
        accuracy = _last_accuracy(trial)
        if trial.checkpoint is not None and accuracy is not None:
            key, stamp = str(trial.checkpoint), [*_stamp(trial.checkpoint), samples]
            if cache.get(key, {}).get("stamp") != stamp:
                loaded = load_with_samples(trial.checkpoint, samples, data_dir)
                cache[key] = {"stamp": stamp, **asdict(count_operations(loaded.model, loaded.inputs))}
            points.append(TrialPoint(experiment.title, experiment.dataset, trial.trial_id, accuracy, cache[key]["ops"]))
        on_trial()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(cache_file) as partial:
        partial.write_text(json.dumps(cache, indent=1))
    return points


def _front_of(points: list[TrialPoint]) -> list[TrialPoint]:
    """The Pareto-optimal points, by increasing operations."""
    on_front = pareto_front([p.ops for p in points], [p.accuracy for p in points])
    return sorted((p for p, on in zip(points, on_front) if on), key=lambda p: p.ops)


def tradeoff_figure(points: list[TrialPoint], out_dir: Path) -> Artifact:
    """Scatter of accuracy against operations per sample (log x), one marker per study; Pareto fronts joined:
    each study's own (dashed, in its colour) and the front over all trials (circled, black)."""
    shown = [point for point in points if point.ops > 0]  # a log axis has no place for zero
    figure, axis = plt.subplots(figsize=(7.5, 5))
    for index, study in enumerate(dict.fromkeys(point.study for point in shown)):
        mine = [point for point in shown if point.study == study]
        dots = axis.scatter([p.ops for p in mine], [p.accuracy for p in mine], marker=MARKERS[index % len(MARKERS)], s=45, alpha=0.8, label=study)
        own = _front_of(mine)
        axis.step([p.ops for p in own], [p.accuracy for p in own], where="post", color=dots.get_facecolor()[0], linestyle="--", linewidth=1)
    optimal = _front_of(shown)
    axis.step([p.ops for p in optimal], [p.accuracy for p in optimal], where="post", color="black", linewidth=1, zorder=1)
    axis.scatter([p.ops for p in optimal], [p.accuracy for p in optimal], s=160, facecolor="none", edgecolor="black", label="Pareto front, all trials")
    axis.set_xscale("log")
    axis.set_xlabel("operations per test sample (MACs + SynOps, log scale)")
    axis.set_ylabel(f"{AXIS_LABELS.get(METRIC, METRIC)} at the trial's last epoch")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize="small")
    axis.set_title("Accuracy against operations, every trial of every study" + (" (synthetic data)" if any("(synthetic)" in p.study for p in shown) else ""))
    path = save_figure(figure, out_dir / "accuracy_vs_operations.png")
    studies = {p.study for p in shown}
    left_out = len(points) - len(shown)
    caption = (
        f"{AXIS_LABELS.get(METRIC, METRIC).capitalize()} against operations per test sample for {plural(len(shown), 'trial')} "
        f"of {plural(len(studies), 'study')}, each at its last checkpoint; circled and joined in black: the Pareto front "
        f"({plural(len(optimal), 'trial')} that no other trial beats on both); dashed: each study's own front"
        + (f"; {plural(left_out, 'trial')} with zero operations left off the log axis" if left_out else "")
        + (". The studies use different data sets, so the black front compares across tasks." if len({p.dataset for p in shown}) > 1 else ".")
    )
    return Artifact(path, caption, SECTION)
