"""Accuracy against estimated energy per inference over every trial of every study, with the Pareto front marked.

Each trial's last checkpoint is counted (analysis.operations: one cached count per checkpoint, on the
same test samples as the comparison table) and its energy estimated with the report's energy table.
Each study's best model (Ray's best-scored checkpoint, the one the comparison table and the writeup
count) is drawn too, from the same cached count: where its epoch is not its trial's last, it is a point
of its own, so the table's model is always on the plot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt

from analysis.artifacts import Artifact, save_figure
from analysis.comparison import SECTION
from analysis.content import plural
from analysis.experiment import ArchitectureResult, Trial
from analysis.operations import checkpoint_operations
from analysis.study_figures import AXIS_LABELS
from study.config import METRIC
from study.energy import ENERGY_SAMPLES, HOROWITZ_FLOAT32, EnergyTable

MARKERS = "osD^vP*X"


@dataclass(frozen=True)
class TrialPoint:
    study: str  # the experiment's title
    dataset: str
    trial_id: str
    accuracy: float  # METRIC at the epoch of the checkpoint whose operations were counted (a trial's last, a best model's best)
    energy_pj: float  # estimated energy per inference
    synthetic: bool = False  # the study ran on synthetic data
    epoch: int | None = None  # the epoch of that checkpoint, where known
    best: bool = False  # the study's best model: the checkpoint the comparison table counts


def pareto_front(cost: list[float], accuracy: list[float]) -> list[bool]:
    """Which points no other point beats: none costs at most as much with at least the accuracy, one of them strictly."""
    return [
        not any(
            (c <= cost[i] and a >= accuracy[i]) and (c < cost[i] or a > accuracy[i])
            for c, a in zip(cost, accuracy)
        )
        for i in range(len(cost))
    ]


def _last_accuracy(trial: Trial) -> float | None:
    values = trial.history[METRIC].dropna() if METRIC in trial.history else []
    return float(values.iloc[-1]) if len(values) else trial.last.get(METRIC)


def _last_epoch(trial: Trial) -> int | None:
    """The epoch of the trial's last checkpoint: the last one it reported, as BestModel.epoch numbers them."""
    epochs = trial.history["epoch"].dropna() if "epoch" in trial.history else []
    return int(epochs.iloc[-1]) if len(epochs) else (trial.epochs or None)


def trial_points(
    experiment: ArchitectureResult, samples: int, data_dir: Path | None, cache_dir: Path, table: EnergyTable, on_trial: Callable[[], None] = lambda: None
) -> list[TrialPoint]:
    """One point per trial that saved a checkpoint; `on_trial` is called after each trial (a progress bar)."""
    points = []
    for trial in experiment.trials:
        accuracy = _last_accuracy(trial)
        if trial.checkpoint is not None and accuracy is not None:
            count = checkpoint_operations(trial.checkpoint, samples, data_dir, cache_dir)
            points.append(TrialPoint(experiment.title, experiment.dataset, trial.trial_id, accuracy, table.energy_pj(count),
                                     experiment.synthetic, _last_epoch(trial)))
        on_trial()
    return points


def best_point(experiment: ArchitectureResult, samples: int, data_dir: Path | None, cache_dir: Path, table: EnergyTable) -> TrialPoint:
    """The study's best model as the comparison table shows it: its checkpoint's one cached count (analysis.operations;
    the report counted it for the table, so this reads the cache) and its validation accuracy at its best epoch."""
    best = experiment.best
    count = checkpoint_operations(experiment.best_checkpoint, samples, data_dir, cache_dir)
    return TrialPoint(experiment.title, experiment.dataset, best.trial_id, best.val_acc, table.energy_pj(count), experiment.synthetic, best.epoch, best=True)


def _merged(points: list[TrialPoint], best: list[TrialPoint]) -> tuple[list[TrialPoint], list[TrialPoint]]:
    """(the points with the best models, the best models added as points of their own): see `with_best`."""
    merged, added = list(points), []
    for model in best:
        same = next((i for i, p in enumerate(merged) if (p.study, p.trial_id, p.epoch) == (model.study, model.trial_id, model.epoch) and not p.best), None)
        if same is None:
            merged.append(model)
            added.append(model)
        else:
            merged[same] = model
    return merged, added


def with_best(points: list[TrialPoint], best: list[TrialPoint]) -> list[TrialPoint]:
    """The trials' points with each study's best model: a best model that is its trial's last checkpoint (same study,
    trial and epoch) marks that point; one from an earlier epoch is added as a point of its own."""
    return _merged(points, best)[0]


def _best_clause(stars: list[TrialPoint], added: list[TrialPoint], earlier: list[TrialPoint]) -> str:
    """The caption's words on the stars: what they are, and whether they are points of their own."""
    if not stars:
        return ""
    clause = (
        "; stars: each study's best model, the checkpoint the comparison table and the writeup count (Ray's best-scored "
        "epoch, at its accuracy there, from the same cached count on the same samples); "
    )
    if earlier:
        verb = "is" if len(earlier) == 1 else "are"
        return clause + f"{len(earlier)} of them {verb} from an earlier epoch than the trial's last and drawn beside that trial's last checkpoint"
    return clause + ("drawn as points of their own" if added else "each is its trial's last checkpoint")


def _front_of(points: list[TrialPoint]) -> list[TrialPoint]:
    """The Pareto-optimal points, by increasing energy."""
    on_front = pareto_front([p.energy_pj for p in points], [p.accuracy for p in points])
    return sorted((p for p, on in zip(points, on_front) if on), key=lambda p: p.energy_pj)


def tradeoff_figure(points: list[TrialPoint], out_dir: Path, table: EnergyTable, best: list[TrialPoint] = ()) -> Artifact:
    """Scatter of accuracy against estimated energy per inference (log x), one marker per study; Pareto fronts joined:
    each study's own (dashed, in its colour) and the front over every point (circled, black). `best`: each study's best
    model (`best_point`), drawn as a large star in its study's colour, beside its trial's last checkpoint where that
    is another epoch (`with_best`)."""
    merged, added = _merged(points, list(best))
    shown = [point for point in merged if point.energy_pj > 0]  # a log axis has no place for zero
    added = [p for p in added if p.energy_pj > 0]
    earlier = [p for p in added if any((q.study, q.trial_id) == (p.study, p.trial_id) for q in points)]  # beside their trial's last
    figure, axis = plt.subplots(figsize=(7.5, 5))
    for index, study in enumerate(dict.fromkeys(point.study for point in shown)):
        mine = [point for point in shown if point.study == study]
        dots = axis.scatter([p.energy_pj for p in mine], [p.accuracy for p in mine], marker=MARKERS[index % len(MARKERS)], s=45, alpha=0.8, label=study)
        colour = dots.get_facecolor()[0]
        own = _front_of(mine)
        axis.step([p.energy_pj for p in own], [p.accuracy for p in own], where="post", color=colour, linestyle="--", linewidth=1)
        if stars := [p for p in mine if p.best]:
            axis.scatter([p.energy_pj for p in stars], [p.accuracy for p in stars], marker="*", s=320, color=colour,
                         edgecolor="black", linewidth=0.8, zorder=4, label=f"{study}: best model (comparison table)")
    optimal = _front_of(shown)
    axis.step([p.energy_pj for p in optimal], [p.accuracy for p in optimal], where="post", color="black", linewidth=1, zorder=1)
    axis.scatter([p.energy_pj for p in optimal], [p.accuracy for p in optimal], s=160, facecolor="none", edgecolor="black", label="Pareto front, all points")
    axis.set_xscale("log")
    axis.set_xlabel(f"estimated energy per inference, pJ ({table.name}; log scale)")
    axis.set_ylabel(f"{AXIS_LABELS.get(METRIC, METRIC)} at the counted checkpoint's epoch")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize="small")
    axis.set_title("Accuracy against energy, every trial of every study" + (" (synthetic data)" if any(p.synthetic for p in shown) else ""))
    path = save_figure(figure, out_dir / "accuracy_vs_energy.png")
    studies = {p.study for p in shown}
    stars = [p for p in shown if p.best]
    left_out = len(merged) - len(shown)
    caption = (
        f"{AXIS_LABELS.get(METRIC, METRIC).capitalize()} against estimated energy per inference for {plural(len(shown) - len(added), 'trial')} "
        f"of {plural(len(studies), 'study')}, each at its last checkpoint (arithmetic only, {table.source}; memory access "
        "not included)"
        + _best_clause(stars, added, earlier)
        + "; circled and joined in black: the Pareto front "
        f"({plural(len(optimal), 'point')} that no other point beats on both); dashed: each study's own front"
        + (f"; {plural(left_out, 'point')} with zero energy left off the log axis" if left_out else "")
        + (". The studies use different data sets, so the black front compares across tasks." if len({p.dataset for p in shown}) > 1 else ".")
    )
    return Artifact(path, caption, SECTION)


def searched_fronts(experiment: ArchitectureResult) -> list | None:
    """The Optuna study an energy-aware search (--objective accuracy,energy) kept for this architecture: its
    complete trials and which of them are on its Pareto front; None when the study searched accuracy only."""
    if "energy" not in experiment.settings.objectives:
        return None
    import optuna

    from study.searcher import JOURNAL_FILE, journal_storage

    if not (experiment.path / JOURNAL_FILE).is_file():  # opening a journal that is not there would create one
        return None
    with contextlib.suppress(KeyError):  # the journal holds no study of this architecture
        study = optuna.load_study(study_name=experiment.arch, storage=journal_storage(str(experiment.path)))
        front = {trial.number for trial in study.best_trials}
        return [(trial.values, trial.number in front) for trial in study.get_trials(states=[optuna.trial.TrialState.COMPLETE])]
    return None


def searched_front_figure(experiments: list[ArchitectureResult], out_dir: Path) -> Artifact | None:
    """Each energy-aware search's complete trials, validation accuracy against estimated energy, with the Pareto
    front Optuna found joined; None when no experiment searched energy."""
    searched = {experiment: points for experiment in experiments if (points := searched_fronts(experiment))}
    if not searched:
        return None
    figure, axis = plt.subplots(figsize=(7.5, 5))
    for index, (experiment, points) in enumerate(searched.items()):
        dots = axis.scatter([v[1] for v, _ in points], [v[0] for v, _ in points], marker=MARKERS[index % len(MARKERS)], s=45, alpha=0.6, label=experiment.title)
        front = sorted((v for v, on in points if on), key=lambda values: values[1])  # by increasing energy
        axis.step([v[1] for v in front], [v[0] for v in front], where="post", color=dots.get_facecolor()[0], linewidth=1.5)
    axis.set_xscale("log")
    axis.set_xlabel(f"estimated energy per inference, pJ ({HOROWITZ_FLOAT32.name}; log scale)")
    axis.set_ylabel(f"{AXIS_LABELS.get(METRIC, METRIC)} at the trial's last epoch")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize="small")
    synthetic = any(experiment.synthetic for experiment in searched)
    axis.set_title("The searched Pareto fronts of accuracy and energy" + (" (synthetic data)" if synthetic else ""))
    path = save_figure(figure, out_dir / "searched_front.png")
    trials = sum(len(points) for points in searched.values())
    caption = (
        f"What each energy-aware search (--objective accuracy,energy) found: {plural(trials, 'trial')} that ran every epoch, "
        f"validation accuracy against the energy each estimated on {ENERGY_SAMPLES} validation samples at its last epoch "
        f"(arithmetic only, {HOROWITZ_FLOAT32.source}; memory access not included); joined: the Pareto front of each Optuna study (trials stopped early by "
        "ASHA or by themselves are not on it)."
    )
    return Artifact(path, caption, SECTION)
