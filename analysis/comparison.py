"""The comparison and energy tables: one row per study, from summary.json, the trial histories and the best model's operations."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from analysis.content import Table, si
from analysis.experiment import ArchitectureResult
from study.config import Hyperparams
from study.energy import OMITTED, EnergyTable
from study.files import write_atomically
from study.operations import OperationCount
from study.statistics import Interval

SECTION = "Comparison"


@dataclass(frozen=True)
class StudyRow:
    """One study's numbers. Accuracies are fractions; `time_steps` is None for the CNN (one pass, no time)."""

    name: str
    dataset: str
    arch: str
    spiking: bool
    synthetic: bool
    best_val_acc: float
    best_val_loss: float | None
    test_acc: float
    test_loss: float | None
    test_samples: int
    parameters: int
    model_bytes: int
    time_steps: int | None
    seconds_per_epoch: float  # mean epoch_seconds of the best trial
    search_epochs: int  # epochs run by every trial of the search together
    trials: int
    effective_macs: float  # per inference (one test sample), NeuroBench's definitions (study.operations)
    effective_acs: float
    dense_ops: float
    membrane_updates: float
    activation_sparsity: float
    operation_samples: int  # test samples the operations were averaged over
    energy_pj: float  # estimated energy per inference with the table named `energy_table_name`
    energy_table_name: str
    saw: str = ""  # what its input was, in words
    repeats: int = 0  # trainings of the best configuration with new seeds
    repeat_acc: Interval | None = None  # their test accuracy: mean, std, 95% CI
    repeats_caveat: str = ""  # repeats lost or silent (study.summary.Architecture.repeats_caveat)
    output_silent: bool = False  # the best model emitted no output spike on the test split
    experiment: str = ""  # the experiment folder it belongs to (pairs within one folder have a paired test)


def study_row(experiment: ArchitectureResult, operations: OperationCount, hp: Hyperparams, table: EnergyTable) -> StudyRow:
    best = experiment.best
    history = experiment.best_trial.history
    return StudyRow(
        name=experiment.name,
        dataset=experiment.dataset,
        arch=experiment.arch,
        spiking=experiment.spiking,
        synthetic=experiment.synthetic,
        best_val_acc=best.val_acc,
        best_val_loss=best.val_loss,
        test_acc=best.test_acc,
        test_loss=best.test_loss,
        test_samples=best.test_samples,
        parameters=operations.parameters,
        model_bytes=operations.model_bytes,
        time_steps=hp.num_steps if experiment.spiking else None,
        seconds_per_epoch=float(history["epoch_seconds"].mean()) if "epoch_seconds" in history else math.nan,
        search_epochs=sum(trial.epochs for trial in experiment.trials),
        trials=len(experiment.trials),
        effective_macs=operations.effective_macs,
        effective_acs=operations.effective_acs,
        dense_ops=operations.dense,
        membrane_updates=operations.membrane_updates,
        activation_sparsity=operations.activation_sparsity,
        operation_samples=operations.samples,
        energy_pj=table.energy_pj(operations),
        energy_table_name=table.name,
        saw=experiment.architecture.saw,
        repeats=len(experiment.architecture.repeats),
        repeat_acc=experiment.architecture.test_acc,
        repeats_caveat=experiment.architecture.repeats_caveat(),
        output_silent=best.output_silent,
        experiment=str(experiment.path),
    )


def interval_cell(interval: Interval | None, repeats: int, caveat: str = "") -> str:
    if interval is None:
        return f"- ({caveat})" if caveat else "-"
    caveat = f"; {caveat}" if caveat else ""
    if interval.alike:
        return f"{100 * interval.mean:.1f}% (all {repeats} repeats alike{caveat})"
    if interval.low is None:
        return f"{100 * interval.mean:.1f}% (1 repeat{caveat})"
    return f"{100 * interval.mean:.1f}% ({100 * interval.low:.1f}-{100 * interval.high:.1f}, {repeats} repeats{caveat})"


def _percent(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def _number(spec: str) -> Callable:
    return lambda value: "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


# Column header -> how to show a row's value; the order of the table.
COLUMNS: dict[str, Callable[[StudyRow], str]] = {
    "study": lambda row: row.name,
    "dataset": lambda row: row.dataset + (" (synthetic)" if row.synthetic else ""),
    "network": lambda row: row.arch + (" (spiking)" if row.spiking else ""),
    "input": lambda row: row.saw or "-",
    "best val acc": lambda row: _percent(row.best_val_acc),
    "best val loss": lambda row: _number(".3f")(row.best_val_loss),
    "test acc": lambda row: _percent(row.test_acc) + (" (no output spike)" if row.output_silent else ""),
    "repeats: test acc (95% CI)": lambda row: interval_cell(row.repeat_acc, row.repeats, row.repeats_caveat),
    "test loss": lambda row: _number(".3f")(row.test_loss),
    "parameters": lambda row: _number(",d")(row.parameters),
    "model bytes": lambda row: _number(",d")(row.model_bytes),
    "time steps": lambda row: _number("d")(row.time_steps),
    "s / epoch": lambda row: _number(".2f")(row.seconds_per_epoch),
    "search epochs": lambda row: f"{row.search_epochs} ({row.trials} trials)",
    "effective MACs": lambda row: si(row.effective_macs),
    "effective ACs": lambda row: si(row.effective_acs),
    "dense ops": lambda row: si(row.dense_ops),
    "membrane updates": lambda row: si(row.membrane_updates),
    "activation sparsity": lambda row: _percent(row.activation_sparsity),
    "energy / inference": lambda row: joules(row.energy_pj),
}


def comparison_table(rows: list[StudyRow]) -> Table:
    caption = (
        "Per study: the best trial's validation and test results (test on "
        + ", ".join(f"{row.test_samples} samples of {row.dataset}" for row in rows)
        + "); operations of the best model per inference (one test sample, averaged over "
        + ", ".join(f"{row.operation_samples}" for row in rows)
        + " test samples), by NeuroBench's definitions: effective MACs (multiply-accumulates of nonzero non-spike "
        "inputs with nonzero weights), effective ACs (accumulates triggered by spikes), dense ops (every product, zeros "
        "included), membrane updates (neurons updated per time step); activation sparsity: fraction of zero spikes (SNN) "
        "or zero ReLU outputs (CNN); energy: the estimate of the energy table below; s / epoch: the best trial's mean; "
        "search epochs: all trials together. Repeats: the best configuration trained again from scratch with new "
        "seeds, each tested once at its best validation epoch; mean and 95% Student-t confidence interval over them. "
        "Input: what each network saw."
    )
    return Table(
        caption=caption,
        section=SECTION,
        headers=list(COLUMNS),
        rows=[[show(row) for show in COLUMNS.values()] for row in rows],
    )


def joules(picojoules: float) -> str:
    """An energy in three significant digits with its unit: 912 pJ, 4.2 nJ, 13.5 uJ."""
    for factor, unit in ((1e6, "uJ"), (1e3, "nJ")):
        if abs(picojoules) >= factor:
            return f"{picojoules / factor:.3g} {unit}"
    return f"{picojoules:.3g} pJ"


def energy_table(rows: list[StudyRow], operations: list[OperationCount], tables: list[EnergyTable]) -> Table:
    """Each best model's estimated energy per inference under each energy table, with what the estimate assumes."""
    caption = (
        "Estimated energy per inference of each best model: effective MACs, effective ACs and membrane updates, each times "
        "the energy of one operation of its kind (the Horowitz tables charge a membrane update one multiply-accumulate: "
        "decay times membrane plus input). Tables: "
        + "; ".join(f"{table.name}: {table.source}" for table in tables)
        + f". {OMITTED}"
    )
    return Table(
        caption=caption,
        section=SECTION,
        headers=["study", *(f"energy / inference ({table.name})" for table in tables)],
        rows=[[row.name, *(joules(table.energy_pj(count)) for table in tables)] for row, count in zip(rows, operations)],
    )


def layer_table(rows: list[StudyRow], operations: list[OperationCount]) -> Table:
    """Each best model's operations per inference layer by layer: where its effective MACs and ACs are spent."""
    caption = (
        "Operations per inference of each best model, by layer (NeuroBench's definitions): a layer whose every input was "
        "spikes performs accumulates (ACs), any other multiply-accumulates (MACs); effective: products of a nonzero input "
        "and a nonzero weight; dense: every product."
    )
    return Table(
        caption=caption,
        section=SECTION,
        headers=["study", "layer", "operations", "effective / inference", "dense / inference"],
        rows=[
            [row.name, layer.name, "ACs" if layer.binary else "MACs", si(layer.effective), si(layer.dense)]
            for row, count in zip(rows, operations)
            for layer in count.layers
        ],
    )


def flat_record(row: StudyRow) -> dict:
    """A row as CSV columns: the repeats' interval as repeat_acc_mean, _low, _high."""
    record = asdict(row)
    interval = record.pop("repeat_acc") or {}
    return {**record, **{f"repeat_acc_{key}": interval.get(key) for key in ("mean", "low", "high")}}


def write_csv(rows: list[StudyRow], path: Path) -> Path:
    """The table's raw numbers, for whoever makes their own plots or paper tables."""
    text = io.StringIO(newline="")
    records = [flat_record(row) for row in rows]
    writer = csv.DictWriter(text, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)
    return write_atomically(path, text.getvalue())
