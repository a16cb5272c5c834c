"""`python -m study.bench --search`: does a short search spend its budget on networks that learn?

Runs a short study per dataset x architecture, each as a user would (`python -m study.run` in its own
process, with its own Ray), on the synthetic sets in the real formats and on scikit-learn's 1797 real
digits written as MNIST, then reads what each study left behind (summary.json, the trials'
progress.csv) and reports per study:
- the share of trials above chance after their first epoch;
- the share of all epochs spent on trials that ended at or near chance;
- silent, saturated and diverged trials;
- the best validation accuracy and the best model's test accuracy.
"Above chance" is a one-sided binomial test of the validation accuracy against 1 / classes at the
5% level (study.loop.above_chance, scipy.stats.binomtest), the rule trials themselves stop by.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from study.config import METRIC
from study.loop import above_chance
from study.registry import ARCHITECTURES, DATASETS
from study.summary import FAILED_TO_LEARN, read_summary

# (label, dataset, --synthetic?): the synthetic sets, and the real digits in MNIST's format.
DATA = (("mnist-synthetic", "mnist", True), ("nmnist-synthetic", "nmnist", True), ("dvsgesture-synthetic", "dvsgesture", True), ("digits", "mnist", False))


@dataclass(frozen=True)
class SearchOutcome:
    data: str
    arch: str
    trials: int
    above_chance_after_epoch_1: float  # share of trials
    epochs: int
    epochs_on_chance_trials: float  # share of all epochs, on trials that ended at or near chance
    failed_to_learn: int  # trials that stopped themselves: silent, saturated, diverged
    best_val_acc: float | None
    test_acc: float | None
    test_samples: int | None
    seconds: float
    at_chance_after_epoch_1: tuple = ()  # those trials: (status, epochs, config), for a look at why


def outcome_of(experiment: Path, data: str, arch: str, classes: int, seconds: float) -> SearchOutcome:
    summary = read_summary((experiment / "summary.json").read_text(), str(experiment / "summary.json"))
    first, epochs, wasted, at_chance = [], 0, 0, []
    for trial in summary.trials:
        history = _history(experiment / Path(trial.path).name)
        if history.empty:
            continue
        samples = int(history["val_samples"].iloc[-1])
        first.append(above_chance(float(history[METRIC].iloc[0]), samples, classes))
        if not first[-1]:
            at_chance.append((str(trial.status), trial.epochs, trial.config))
        learned = above_chance(float(history[METRIC].iloc[-1]), samples, classes)
        epochs += len(history)
        wasted += 0 if learned else len(history)
    best = summary.architectures[0].best
    return SearchOutcome(
        data=data,
        arch=arch,
        trials=len(summary.trials),
        above_chance_after_epoch_1=sum(first) / len(first) if first else 0.0,
        epochs=epochs,
        epochs_on_chance_trials=wasted / epochs if epochs else 0.0,
        failed_to_learn=sum(trial.status in FAILED_TO_LEARN for trial in summary.trials),
        best_val_acc=best.val_acc if best else None,
        test_acc=best.test_acc if best else None,
        test_samples=best.test_samples if best else None,
        seconds=seconds,
        at_chance_after_epoch_1=tuple(at_chance),
    )


def _history(trial_dir: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(trial_dir / "progress.csv")
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame()
    return frame.drop_duplicates("epoch", keep="last").sort_values("epoch").dropna(subset=[METRIC])


def run_study(workdir: Path, label: str, dataset: str, synthetic: bool, arch: str, trials: int, epochs: int, seed: int) -> Path:
    """One study as a user runs it, in its own process; returns its experiment folder."""
    name = f"{label}-{arch}"
    command = [
        sys.executable, "-m", "study.run", dataset, "--arch", arch, "--name", name,
        "--num-samples", str(trials), "--max-epochs", str(epochs), "--seed", str(seed), "--repeats", "0",
        "--data-dir", str(workdir / ("data" if synthetic else "digits")),
        "--storage", str(workdir / "results"), "--checkpoints-dir", str(workdir / "checkpoints"),
        *(["--synthetic"] if synthetic else []),
    ]
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {finished.returncode}:\n{finished.stderr[-3000:]}")
    return workdir / "results" / name


def run(trials: int, epochs: int, seed: int, archs: list[str], data: list[str]) -> list[SearchOutcome]:
    from study.data.digits import write_digits_as_mnist

    outcomes = []
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        if "digits" in data:
            write_digits_as_mnist(workdir / "digits")
        for label, dataset, synthetic in DATA:
            if label not in data:
                continue
            for arch in archs:
                started = time.perf_counter()
                experiment = run_study(workdir, label, dataset, synthetic, arch, trials, epochs, seed)
                classes = DATASETS[dataset].source.num_classes
                outcome = outcome_of(experiment, label, arch, classes, time.perf_counter() - started)
                print(row(outcome), flush=True)
                outcomes.append(outcome)
    return outcomes


HEADER = f"{'data':<22}{'arch':<7}{'trials':>7}{'above chance at epoch 1':>25}{'epochs on chance trials':>25}{'failed':>8}{'best val':>10}{'test':>8}{'s':>7}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def row(outcome: SearchOutcome) -> str:
    test = f"{_percent(outcome.test_acc)}" if outcome.test_acc is not None else "-"
    return (
        f"{outcome.data:<22}{outcome.arch:<7}{outcome.trials:>7}{_percent(outcome.above_chance_after_epoch_1):>25}"
        f"{_percent(outcome.epochs_on_chance_trials):>25}{outcome.failed_to_learn:>8}{_percent(outcome.best_val_acc):>10}"
        f"{test:>8}{outcome.seconds:>7.0f}"
    )


def totals(outcomes: list[SearchOutcome]) -> dict:
    """Over every study: the share of trials above chance after epoch 1, and of epochs on chance trials."""
    trials = sum(o.trials for o in outcomes)
    epochs = sum(o.epochs for o in outcomes)
    return {
        "trials": trials,
        "above_chance_after_epoch_1": sum(o.above_chance_after_epoch_1 * o.trials for o in outcomes) / trials if trials else 0.0,
        "epochs": epochs,
        "epochs_on_chance_trials": sum(o.epochs_on_chance_trials * o.epochs for o in outcomes) / epochs if epochs else 0.0,
    }


def search_record(outcomes: list[SearchOutcome], trials: int, epochs: int) -> dict:
    """What the search benchmark writes: its settings, each study's outcome and the totals over all."""
    return {"settings": {"trials": trials, "max_epochs": epochs}, "studies": [asdict(o) for o in outcomes], "total": totals(outcomes)}


def table(measured: dict) -> str:
    total = measured["total"]
    lines = [f"Search benchmark: {measured['settings']['trials']} trials of up to {measured['settings']['max_epochs']} epochs per study", HEADER]
    lines += [row(SearchOutcome(**study)) for study in measured["studies"]]
    lines.append(
        f"all studies: {_percent(total['above_chance_after_epoch_1'])} of {total['trials']} trials above chance after epoch 1 "
        f"(goal at least 80%), {_percent(total['epochs_on_chance_trials'])} of {total['epochs']} epochs on trials that ended "
        f"at or near chance (goal at most 15%)"
    )
    return "\n".join(lines)


def main_search(trials: int, epochs: int, seed: int, archs: list[str], data: list[str], out: Path) -> int:
    try:
        import sklearn  # noqa: F401  (the real digits come from scikit-learn)
    except ImportError:
        print("error: the search benchmark trains on scikit-learn's digits: pip install scikit-learn (or -e '.[dev]').", file=sys.stderr)
        return 2
    print(HEADER, flush=True)
    measured = search_record(run(trials, epochs, seed, archs, data), trials, epochs)
    from study.files import write_atomically

    write_atomically(out, json.dumps(measured, indent=2) + "\n")
    print(table(measured))
    print(f"Written: {out}")
    return 0


ALL_ARCHS = sorted(ARCHITECTURES)
ALL_DATA = [label for label, _, _ in DATA]
