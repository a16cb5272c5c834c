"""`python -m analysis.report RESULTS... [--label LABEL]`: one page comparing finished studies.

Each RESULTS is an experiment folder or a name under ./results. Writes `<out-dir>/<label>/index.html`
and `report.md` with the same figures (beside them, linked relatively) and tables.
Exit status 2 on bad input (not an experiment, no finished trial, a checkpoint of another model).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from analysis.comparison import StudyRow, comparison_table, energy_table, layer_table, study_row, write_csv
from analysis.content import Document, Note
from analysis.experiment import ArchitectureResult, load_experiments
from analysis.exports import export_table
from analysis.gradcam import gradcam_artifacts
from analysis.hyperparameters import Importance, parameter_importance
from analysis.operations import checkpoint_operations
from analysis.page import html
from analysis.repeats import repeat_accuracy_figure, repeat_curves_figure
from analysis.samples import load_with_samples
from analysis.spikes import spike_artifacts
from analysis.study_figures import SECTION as STUDY_SECTION
from analysis.study_figures import hyperparameter_effects, importance_chart, learning_curves, parallel_coordinates
from analysis.tradeoff import best_point, searched_front_figure, trial_points, tradeoff_figure
from analysis.weights import weight_artifacts
from analysis.writeup import markdown, summary_sentences
from study.cli import check_folder_name, count, print_error
from study.energy import HOROWITZ_FLOAT32, HOROWITZ_INT8, EnergyTable, load_energy_table
from study.errors import UserError
from study.files import write_atomically
from study.writable import check_writable_folder


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="experiment folders (<storage>/<name>) or names under ./results")
    parser.add_argument("--label", help="the report's folder name under --out-dir (default: the experiment folders' names joined by '+')")
    parser.add_argument("--out-dir", type=Path, default=Path("reports"), help="where reports go (default ./reports)")
    parser.add_argument(
        "--samples", type=count, default=20,
        help="test samples per model for Grad-CAM, spikes and the operation counts of every checkpoint (default 20)",
    )
    parser.add_argument(
        "--energy-table", type=Path,
        help="JSON file of energy per operation in pJ (mac_pj, ac_pj, membrane_update_pj; optional name, source); "
        "default: Horowitz, ISSCC 2014, 45 nm, 32-bit float (4.6 pJ a MAC, 0.9 pJ an AC)",
    )
    parser.add_argument("--data-dir", type=Path, help="dataset root for every experiment (default: the one each study used, from its study.json)")
    return parser


def study_section(experiments: list[ArchitectureResult], folder: Path, document: Document) -> dict[str, Importance]:
    """Learning curves, hyperparameter effects, importances and parallel coordinates; returns the importances."""
    document.items.append(learning_curves(experiments, folder))
    importances = {}
    for experiment in experiments:
        effects = hyperparameter_effects(experiment, folder)
        if effects is None:
            text = f"{experiment.title}: its scored trials share every hyperparameter, so there are no effects to plot."
            document.items.append(Note(STUDY_SECTION, text))
            continue
        document.items.append(effects)
        importance = parameter_importance(experiment)
        if isinstance(importance, Importance):
            importances[experiment.title] = importance
            document.items.append(importance_chart(experiment, importance, folder))
        else:
            document.items.append(Note(STUDY_SECTION, f"{experiment.title}: no importance chart, because {importance}."))
        document.items.append(parallel_coordinates(experiment, folder))
    return importances


def model_section(
    experiments: list[ArchitectureResult], folder: Path, samples: int, data_dir: Path | None, tables: list[EnergyTable], document: Document, bar: tqdm
) -> list[StudyRow]:
    """Grad-CAM and spikes of each best model, then all their weights; returns the comparison rows."""
    rows, models, counts = [], {}, []
    for experiment in experiments:
        bar.set_postfix_str(f"best model of {experiment.name}")
        where = data_dir or experiment.data_dir
        loaded = load_with_samples(experiment.best_checkpoint, samples, where)
        document.items += gradcam_artifacts(loaded, folder / experiment.name)
        document.items += spike_artifacts(loaded, folder / experiment.name)
        counts.append(checkpoint_operations(experiment.best_checkpoint, samples, where, cache_dir(folder), loaded))
        rows.append(study_row(experiment, counts[-1], loaded.hp, tables[0]))
        models[experiment.title] = loaded.model
        bar.update()
    bar.set_postfix_str("weights")
    document.items += weight_artifacts(models, folder / "weights")
    document.items += [energy_table(rows, counts, tables), layer_table(rows, counts)]
    bar.update()
    return rows


def cache_dir(folder: Path) -> Path:
    """Counts cached for every report under the same --out-dir."""
    return folder.parent / ".cache"


def energy_tables(path: Path | None) -> list[EnergyTable]:
    """The report's energy table first (the one its figures and sentences use), then the others shown beside it."""
    if path is None:
        return [HOROWITZ_FLOAT32, HOROWITZ_INT8]
    return [load_energy_table(path), HOROWITZ_FLOAT32, HOROWITZ_INT8]


def report_folder(experiments: list[ArchitectureResult], label: str | None, out_dir: Path) -> Path:
    names = [experiment.name for experiment in experiments]
    if len(set(names)) < len(names):
        raise UserError(f"Two experiments share a name ({', '.join(names)}); the report keeps one folder per name, so give each once.")
    # One comparison folder holds several architectures: its report is named after the folder, once.
    default = "+".join(dict.fromkeys(experiment.path.name for experiment in experiments))
    check_folder_name("--label" if label else "The default --label (the experiment folders' names joined by '+')", label or default, "--out-dir", extra="+")
    folder = out_dir.resolve() / (label or default)
    check_writable_folder(folder, "--out-dir")
    return folder


def paired_comparisons(experiments: list[ArchitectureResult]) -> dict:
    """Every experiment's paired comparisons of its architectures' repeats, by (folder, first, second)."""
    return {
        (str(experiment.path), comparison.first, comparison.second): comparison
        for experiment in experiments
        for comparison in experiment.summary.comparisons
    }


def make_report(specs: list[str], label: str | None, out_dir: Path, samples: int, data_dir: Path | None, energy: Path | None = None) -> Path:
    """Build the report; returns the path of its index.html."""
    tables = energy_tables(energy)
    check_writable_folder(out_dir, "--out-dir")
    experiments = [experiment for spec in specs for experiment in load_experiments(spec)]  # every input is checked before any work
    folder = report_folder(experiments, label, out_dir)
    document = Document(title=f"Spiking and conventional networks: {', '.join(e.title for e in experiments)}")
    steps = 1 + len(experiments) + 1 + sum(len(e.trials) for e in experiments) + 1
    with tqdm(total=steps, desc="report", unit="step") as bar:
        bar.set_postfix_str("study figures")
        importances = study_section(experiments, folder / "study", document)
        bar.update()
        rows = model_section(experiments, folder, samples, data_dir, tables, document, bar)
        points, best = [], []
        for experiment in experiments:
            bar.set_postfix_str(f"operations of every trial of {experiment.name}")
            points += trial_points(experiment, samples, data_dir or experiment.data_dir, cache_dir(folder), tables[0], bar.update)
            # the table's best model on the plot too, from the count model_section cached for the table
            best.append(best_point(experiment, samples, data_dir or experiment.data_dir, cache_dir(folder), tables[0]))
        bar.set_postfix_str("writing")
        optional = [
            repeat_accuracy_figure(experiments, folder / "comparison"),
            repeat_curves_figure(experiments, folder / "comparison"),
            searched_front_figure(experiments, folder / "comparison"),
        ]
        document.items += [comparison_table(rows), *(figure for figure in optional if figure is not None), tradeoff_figure(points, folder / "comparison", tables[0], best)]
        document.items.append(export_table([(e.title, e.best_checkpoint) for e in experiments], folder))
        write_csv(rows, folder / "comparison" / "comparison.csv")
        document.summary = summary_sentences(rows, importances, paired_comparisons(experiments))
        write_atomically(folder / "report.md", markdown(document, folder))
        index = write_atomically(folder / "index.html", html(document, folder))
        bar.update()
    return index


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        index = make_report(args.results, args.label, args.out_dir, args.samples, args.data_dir, args.energy_table)
    except UserError as error:
        return print_error(error)
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
