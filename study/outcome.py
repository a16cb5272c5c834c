"""After the study: test the best model once, export it, write summary.json, print a table."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

from study.checkpoint import TRIAL_CHECKPOINT_FILE, load_model
from study.config import ARCH_KEY, ENERGY_METRIC, METRIC, MODE, Hyperparams, StudySettings
from study.data.encoding import what_it_sees
from study.files import replaced_atomically, write_atomically
from study.final_test import final_test
from study.loop import EPOCH_METRICS, LAYER_RATE, pick_device
from study.registry import ARCHITECTURES, DATASETS
from study.repeats import with_repeats
from study.storage import write_text
from study.summary import FAILED_TO_LEARN, SUMMARY_FILE, UNSTABLE_DIFFERENCE, Architecture, BestModel, Summary, TrialRecord, TrialStatus, json_number


def rank_key(metrics: dict) -> tuple[float, float]:
    """Larger is better: METRIC first, then the lower validation loss breaks ties (unknown loss: last)."""
    sign = 1.0 if MODE == "max" else -1.0
    loss = metrics.get("val_loss")
    return sign * metrics[METRIC], -loss if loss is not None and math.isfinite(loss) else -math.inf


def trial_status(result, max_epochs: int) -> TrialStatus:
    if result.error is not None:
        return TrialStatus.ERROR
    for status in FAILED_TO_LEARN:  # reported by the trial itself (study.loop.epoch_metrics)
        if result.metrics.get(status.value):
            return status
    return TrialStatus.COMPLETED if result.metrics.get("epoch", 0) >= max_epochs else TrialStatus.STOPPED_EARLY


def reported_metrics(metrics: dict) -> dict:
    """The epoch metrics a summary keeps of a result (layer spike rates and an energy-aware search's estimate
    included), non-finite ones as None."""
    kept = (*EPOCH_METRICS, ENERGY_METRIC)
    return {key: json_number(value) for key, value in metrics.items() if key in kept or key.startswith(LAYER_RATE)}


def config_of(result) -> dict:
    """A trial's hyperparameters as it was given them (its architecture is its Architecture record's)."""
    return {key: value for key, value in result.config.items() if key != ARCH_KEY}


def arch_of(result, default: str) -> str:
    return result.config.get(ARCH_KEY, default)


def trial_records(results, max_epochs: int) -> list[TrialRecord]:
    """Each trial's id, config, status, epochs run and last metrics."""
    records = []
    for result in results:
        metrics = result.metrics or {}
        records.append(
            TrialRecord(
                trial_id=metrics.get("trial_id", Path(result.path).name.removeprefix("trial_")),
                config=config_of(result),
                status=trial_status(result, max_epochs),
                epochs=metrics.get("epoch", 0),
                last=reported_metrics(metrics),
                error=None if result.error is None else str(result.error)[-2000:],
                path=result.path,
            )
        )
    return records


def best_checkpoint(results):
    """(result, checkpoint, metrics) of the best scored checkpoint over every trial; diverged ones never count."""
    best = None
    for result in results:
        for checkpoint, metrics in result.best_checkpoints or []:
            if METRIC in metrics and not metrics.get(TrialStatus.DIVERGED.value) and (best is None or rank_key(metrics) > rank_key(best[2])):
                best = (result, checkpoint, metrics)
    return best


def export_best(checkpoint, export_dir: Path) -> Path:
    """Copy the best checkpoint to `export_dir/best.pth` (atomically: no half-written model is ever left)."""
    export_dir.mkdir(parents=True, exist_ok=True)
    target = export_dir / "best.pth"
    with checkpoint.as_directory() as folder, replaced_atomically(target) as partial:
        shutil.copyfile(Path(folder) / TRIAL_CHECKPOINT_FILE, partial)
    return target


def test_and_export(found, settings: StudySettings, export_dir: Path) -> BestModel:
    """Export the best checkpoint, test it once, and write its description beside it."""
    result, checkpoint, metrics = found
    device = pick_device()
    model, payload = load_model(export_best(checkpoint, export_dir), device)
    tested = final_test(settings, model, Hyperparams.from_dict(payload["hyperparams"]), device)
    best = BestModel(
        trial_id=metrics.get("trial_id"),
        config=config_of(result),
        epoch=metrics.get("epoch"),
        val_acc=metrics.get("val_acc"),
        val_loss=json_number(metrics.get("val_loss")),
        checkpoint=str((export_dir / "best.pth").resolve()),
        trial_checkpoint=checkpoint.path,
        **dataclasses.asdict(tested),
    )
    # The model's own description beside it, for readers that do not open the .pth.
    description = {**dataclasses.asdict(best), "dataset": settings.dataset, "arch": settings.arch, "synthetic": settings.synthetic}
    write_atomically(export_dir / "config.json", json.dumps(description, indent=2, default=str) + "\n")
    return best


def searched(results, settings: StudySettings, archs: tuple[str, ...], export_dir: Path) -> dict[str, Architecture]:
    """Per architecture: its trials, and its best checkpoint exported to `export_dir/<arch>/` and tested once."""
    found = {}
    for arch in archs:
        ours = [result for result in results if arch_of(result, settings.arch) == arch]
        arch_settings = dataclasses.replace(settings, arch=arch)
        best = best_checkpoint(ours)
        exported = test_and_export(best, arch_settings, export_dir / arch) if best is not None else None
        hp = Hyperparams.from_dict(exported.config if exported else {})
        saw = what_it_sees(DATASETS[settings.dataset].source.kind, ARCHITECTURES[arch].spiking, hp)
        found[arch] = Architecture(arch, ARCHITECTURES[arch].spiking, saw, exported, tuple(trial_records(ours, settings.max_epochs)))
    return found


def summarize(settings: StudySettings, experiment: str, architectures: dict[str, Architecture], repeated=None, repeats: int = 0) -> Summary:
    """The study's summary (with the repeats' statistics when `repeated` holds their results), written to
    `experiment`/summary.json."""
    comparisons = ()
    if repeated is not None:
        architectures, comparisons = with_repeats(architectures, repeated, settings.max_epochs)
    summary = Summary(
        dataset=settings.dataset,
        synthetic=settings.synthetic,
        metric=METRIC,
        mode=MODE,
        max_epochs=settings.max_epochs,
        experiment=experiment,
        architectures=tuple(architectures.values()),
        repeats=repeats,
        comparisons=comparisons,
    )
    write_text(f"{experiment}/{SUMMARY_FILE}", summary.to_json())
    return summary


def _fmt(value, spec: str = ".4f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def architecture_table(architecture: Architecture, top: int) -> list[str]:
    """The best trials of one architecture, the trials that stopped themselves, and its test results."""
    rows = sorted((row for row in architecture.trials if METRIC in row.last), key=lambda row: rank_key(row.last), reverse=True)
    energy = any(ENERGY_METRIC in row.last for row in rows)  # an energy-aware search (--objective accuracy,energy)
    header = f"{'trial':<22}{'status':<15}{'epochs':>7}{'val_acc':>9}{'val_loss':>10}" + (f"{'energy nJ':>11}" if energy else "")
    lines = [f"{architecture.arch}: {len(architecture.trials)} trials", f"{header}  config"]
    for row in rows[:top]:
        config = ", ".join(f"{k}={_fmt(v, '.3g') if isinstance(v, float) else v}" for k, v in sorted(row.config.items()))
        nanojoules = row.last.get(ENERGY_METRIC) / 1e3 if isinstance(row.last.get(ENERGY_METRIC), float) else None
        cells = f"{row.trial_id:<22}{row.status:<15}{row.epochs:>7}{_fmt(row.last[METRIC]):>9}{_fmt(row.last.get('val_loss')):>10}"
        lines.append(cells + (f"{_fmt(nanojoules, '.4g'):>11}" if energy else "") + f"  {config}")
    for status, verb in (*((status, status.value) for status in FAILED_TO_LEARN), (TrialStatus.ERROR, "failed")):
        affected = [row.trial_id for row in architecture.trials_with(status)]
        if affected:
            lines.append(f"{len(affected)} trial(s) {verb}: {', '.join(affected)}")
    best = architecture.best
    if best is None:
        return [*lines, "No trial reported a checkpoint: nothing to test or export."]
    silent = " NO OUTPUT SPIKE ON THE TEST SET" if best.output_silent else ""
    lines.append(
        f"Best: trial {best.trial_id} epoch {best.epoch}: val_acc {_fmt(best.val_acc)}, test_acc {_fmt(best.test_acc)} "
        f"(test_loss {_fmt(best.test_loss)}, {best.test_samples} test samples){silent}; exported {best.checkpoint}"
    )
    caveat = architecture.repeats_caveat()
    if architecture.test_acc is not None:
        caveat = f" ({caveat})" if caveat else ""
        lines.append(f"Repeats: test_acc {interval_text(architecture.test_acc)} over {len(architecture.repeats)} new seeds{caveat}")
    elif caveat:
        lines.append(f"Repeats: none tested ({caveat})")
    return lines


def interval_text(interval) -> str:
    if interval.alike:
        return f"{100 * interval.mean:.1f}% (every run alike: no interval)"
    if interval.low is None:
        return f"{100 * interval.mean:.1f}% (one run: no interval)"
    return f"{100 * interval.mean:.1f}% (95% CI {100 * interval.low:.1f} to {100 * interval.high:.1f})"


def results_table(summary: Summary, top: int = 10) -> str:
    """A short plain-text table per architecture, the repeats' statistics and the paired comparisons."""
    synthetic = " (SYNTHETIC DATA, not a real result)" if summary.synthetic else ""
    archs = ", ".join(architecture.arch for architecture in summary.architectures)
    lines = [f"Study {summary.dataset} / {archs}{synthetic}"]
    for architecture in summary.architectures:
        lines += architecture_table(architecture, top)
    for comparison in summary.comparisons:
        difference = comparison.difference
        spread = "" if difference.low is None else f"95% CI {100 * difference.low:+.1f} to {100 * difference.high:+.1f} over {difference.n} seeds, "
        verdict = "distinguishable" if comparison.distinguishable else "indistinguishable at this sample size"
        unstable = f"; {UNSTABLE_DIFFERENCE}" if comparison.samples_differ_but_seeds_disagree else ""
        lines.append(
            f"{comparison.first} - {comparison.second}: {100 * difference.mean:+.1f} points of test accuracy "
            f"({spread}{verdict}; {comparison.test}: p = {comparison.p_value:.3g}{unstable})"
        )
    lines.append(f"Summary: {summary.experiment}/{SUMMARY_FILE}")
    return "\n".join(lines)
