"""After the study: test the best model once, write summary.json, export best.pth, print a table."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from study.checkpoint import load_model
from study.config import METRIC, MODE, Hyperparams, StudySettings
from study.data import data_root, final_test_set
from study.experiment import SUMMARY_FILE, write_text
from study.files import replaced_atomically
from study.precision import resolve
from study.registry import DATASETS
from study.trainable import CHECKPOINT_FILE, EPOCH_METRICS, evaluate, input_adapter, make_loader, pick_device, sample_request
from study.tuning import TunePlan

def rank_key(metrics: dict) -> tuple[float, float]:
    """Larger is better: METRIC first, then the lower validation loss breaks ties (unknown loss: last)."""
    sign = 1.0 if MODE == "max" else -1.0
    loss = metrics.get("val_loss")
    return sign * metrics[METRIC], -loss if loss is not None and math.isfinite(loss) else -math.inf


def _trial_status(result, max_epochs: int) -> str:
    if result.error is not None:
        return "error"
    if result.metrics.get("diverged"):
        return "diverged"
    return "completed" if result.metrics.get("epoch", 0) >= max_epochs else "stopped early"


def _json_number(value):
    """NaN and infinity are not JSON: a diverged trial's loss is written as null."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


def trial_rows(results, max_epochs: int) -> list[dict]:
    """Each trial's id, config, status, epochs run and last metrics."""
    rows = []
    for result in results:
        metrics = result.metrics or {}
        rows.append(
            {
                "trial_id": metrics.get("trial_id", Path(result.path).name.removeprefix("trial_")),
                "config": result.config,
                "status": _trial_status(result, max_epochs),
                "epochs": metrics.get("epoch", 0),
                "last": {key: _json_number(metrics[key]) for key in EPOCH_METRICS if key in metrics},
                "error": None if result.error is None else str(result.error)[-2000:],
                "path": result.path,
            }
        )
    return rows


def best_checkpoint(results):
    """(result, checkpoint, metrics) of the best scored checkpoint over every trial; diverged ones never count."""
    best = None
    for result in results:
        for checkpoint, metrics in result.best_checkpoints or []:
            if METRIC in metrics and not metrics.get("diverged") and (best is None or rank_key(metrics) > rank_key(best[2])):
                best = (result, checkpoint, metrics)
    return best


def evaluate_on_test_split(settings: StudySettings, model, hp: Hyperparams, device) -> dict:
    """Evaluate a model on the test split: test_acc, test_loss (null if not finite), test_samples."""
    source = DATASETS[settings.dataset].source
    test_set = final_test_set(source, data_root(settings.data_dir, settings.synthetic), sample_request(settings, hp))
    loader, adapt = make_loader(test_set, hp.batch_size, shuffle=False), input_adapter(settings.dataset, settings.arch, hp)
    result = evaluate(model, loader, adapt, device, resolve(settings.precision, device))
    return {"test_acc": result.acc, "test_loss": _json_number(result.loss), "test_samples": len(test_set)}


def export_best(checkpoint, export_dir: Path) -> Path:
    """Copy the best checkpoint to `export_dir/best.pth` (atomically: no half-written model is ever left)."""
    export_dir.mkdir(parents=True, exist_ok=True)
    target = export_dir / "best.pth"
    with checkpoint.as_directory() as folder, replaced_atomically(target) as partial:
        shutil.copyfile(Path(folder) / CHECKPOINT_FILE, partial)
    return target


def conclude(results, settings: StudySettings, plan: TunePlan, checkpoints_dir: Path) -> dict:
    """Test, export and summarize a finished study; returns the summary written to summary.json."""
    summary = {
        "dataset": settings.dataset,
        "arch": settings.arch,
        "synthetic": settings.synthetic,
        "metric": METRIC,
        "mode": MODE,
        "max_epochs": settings.max_epochs,
        "experiment": plan.experiment_path,
        "best": None,
        "trials": trial_rows(results, settings.max_epochs),
    }
    found = best_checkpoint(results)
    if found is not None:
        result, checkpoint, metrics = found
        export_dir = checkpoints_dir / plan.name
        best = {
            "trial_id": metrics.get("trial_id"),
            "config": result.config,
            "epoch": metrics.get("epoch"),
            "val_acc": metrics.get("val_acc"),
            "val_loss": _json_number(metrics.get("val_loss")),
            "checkpoint": str((export_dir / "best.pth").resolve()),
            "trial_checkpoint": checkpoint.path,
        }
        device = pick_device()
        model, payload = load_model(export_best(checkpoint, export_dir), device)
        best.update(evaluate_on_test_split(settings, model, Hyperparams.from_dict(payload["hyperparams"]), device))
        # The model's own description beside it, for readers that do not open the .pth.
        (export_dir / "config.json").write_text(
            json.dumps({**best, "dataset": settings.dataset, "arch": settings.arch, "synthetic": settings.synthetic}, indent=2, default=str) + "\n"
        )
        summary["best"] = best
    write_text(f"{plan.experiment_path}/{SUMMARY_FILE}", json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def _fmt(value, spec: str = ".4f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def results_table(summary: dict, top: int = 10) -> str:
    """A short plain-text table of the best trials and the test result."""
    rows = sorted((row for row in summary["trials"] if METRIC in row["last"]), key=lambda row: rank_key(row["last"]), reverse=True)
    synthetic = " (SYNTHETIC DATA, not a real result)" if summary["synthetic"] else ""
    lines = [
        f"Study {summary['dataset']} / {summary['arch']}{synthetic}: {len(summary['trials'])} trials",
        f"{'trial':<22}{'status':<15}{'epochs':>7}{'val_acc':>9}{'val_loss':>10}  config",
    ]
    for row in rows[:top]:
        config = ", ".join(f"{k}={_fmt(v, '.3g') if isinstance(v, float) else v}" for k, v in sorted(row["config"].items()))
        lines.append(
            f"{row['trial_id']:<22}{row['status']:<15}{row['epochs']:>7}{_fmt(row['last'][METRIC]):>9}{_fmt(row['last'].get('val_loss')):>10}  {config}"
        )
    for status in ("diverged", "error"):
        affected = [row["trial_id"] for row in summary["trials"] if row["status"] == status]
        if affected:
            lines.append(f"{len(affected)} trial(s) {'failed' if status == 'error' else status}: {', '.join(affected)}")
    best = summary["best"]
    if best is None:
        lines.append("No trial reported a checkpoint: nothing to test or export.")
    else:
        lines.append(
            f"Best: trial {best['trial_id']} epoch {best['epoch']}: val_acc {_fmt(best['val_acc'])}, "
            f"test_acc {_fmt(best['test_acc'])} (test_loss {_fmt(best['test_loss'])}, {best['test_samples']} test samples)"
        )
        lines.append(f"Exported: {best['checkpoint']}")
    lines.append(f"Summary: {summary['experiment']}/{SUMMARY_FILE}")
    return "\n".join(lines)
