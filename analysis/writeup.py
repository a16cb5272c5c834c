"""The report's words: a factual summary generated from the numbers, and the Markdown document.

Every sentence is built from a StudyRow or an Importance; nothing about the outcome is written in advance.
"""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path
from urllib.parse import quote

from analysis.artifacts import Artifact
from analysis.comparison import StudyRow
from analysis.content import Document, Note, Table, plural, si
from analysis.hyperparameters import Importance

TIE = 1e-6  # importance shares closer than this count as equal


def _name(row: StudyRow) -> str:
    return f"{'spiking ' if row.spiking else 'conventional '}{row.arch}"


def _ops(row: StudyRow) -> str:
    parts = [f"{si(row.macs)} MACs" if row.macs else "", f"{si(row.synops)} SynOps" if row.synops else ""]
    return " + ".join(part for part in parts if part) or "no operations"


def synthetic_note(rows: list[StudyRow]) -> list[str]:
    synthetic = [row.name for row in rows if row.synthetic]
    if not synthetic:
        return []
    which = "All studies" if len(synthetic) == len(rows) else "The studies " + ", ".join(synthetic)
    return [
        f"**Synthetic data.** {which} ran on generated data (summary.json says \"synthetic\": true): "
        f"the numbers below check the pipeline and say nothing about how these networks do on the real data sets."
    ]


def study_sentence(row: StudyRow) -> str:
    return (
        f"The {_name(row)} on {row.dataset} reached {100 * row.test_acc:.1f}% test accuracy on {plural(row.test_samples, 'sample')} "
        f"(best validation accuracy {100 * row.best_val_acc:.1f}%), after {plural(row.search_epochs, 'epoch')} of search "
        f"over {plural(row.trials, 'trial')}."
    )


def comparison_sentence(first: StudyRow, second: StudyRow) -> str:
    """Which of two studies tested more accurately, by how many percentage points, at what ratio of operations."""
    winner, loser = (first, second) if first.test_acc >= second.test_acc else (second, first)
    gap = 100 * (winner.test_acc - loser.test_acc)
    same_data = winner.dataset == loser.dataset
    if gap == 0:
        where = f"on {winner.dataset}" if same_data else f"on {winner.dataset} and {loser.dataset}"
        sentence = f"The {_name(winner)} and the {_name(loser)} reached the same test accuracy {where} ({100 * winner.test_acc:.1f}%)"
    else:
        subjects = (
            f"On {winner.dataset}, the {_name(winner)} was more accurate than the {_name(loser)}"
            if same_data
            else f"The {_name(winner)} on {winner.dataset} was more accurate than the {_name(loser)} on {loser.dataset}"
        )
        sentence = f"{subjects} by {gap:.1f} percentage points of test accuracy ({100 * winner.test_acc:.1f}% against {100 * loser.test_acc:.1f}%)"
    if winner.ops > 0 and loser.ops > 0:
        ratio = winner.ops / loser.ops
        scale = f"{ratio:.3g} times the" if ratio >= 1 else f"{1 / ratio:.3g} times fewer"
        sentence += f", at {scale} operations per sample ({_ops(winner)} against {_ops(loser)})"
    if not same_data:
        sentence += "; the data sets differ, so the gap mixes task and network"
    return sentence + "."


def compared_pairs(rows: list[StudyRow]) -> list[tuple[StudyRow, StudyRow]]:
    """Every spiking study against every conventional one, then studies of one kind on the same data
    (say the spiking CNN and the spiking LSTM on DVS Gesture); with only one kind, every pair."""
    spiking = [row for row in rows if row.spiking]
    conventional = [row for row in rows if not row.spiking]
    if not (spiking and conventional):
        return list(itertools.combinations(rows, 2))
    alike = [(a, b) for a, b in itertools.combinations(rows, 2) if a.spiking == b.spiking and a.dataset == b.dataset]
    return [(s, c) for s in spiking for c in conventional] + alike


def sparsity_sentence(rows: list[StudyRow]) -> str:
    parts = [f"{_name(row)} on {row.dataset} {100 * row.activation_sparsity:.1f}%" for row in rows if not math.isnan(row.activation_sparsity)]
    return f"Activation sparsity (share of zero activations over the test samples): {', '.join(parts)}." if parts else ""


def importance_sentence(title: str, importance: Importance) -> str:
    shares = importance.values
    top = max(shares.values())
    leaders = [name for name, share in shares.items() if top - share < TIE]
    joined = leaders[0] if len(leaders) == 1 else ", ".join(leaders[:-1]) + f" and {leaders[-1]}"
    verb = "mattered most" if len(leaders) == 1 else "tied as the most important"
    each = "" if len(leaders) == 1 else " each"
    return (
        f"In the search of the {title}, {joined} {verb} for validation accuracy ({100 * top:.0f}% of the total importance{each}, "
        f"{importance.method} over {plural(importance.trials, 'trial')}){importance.caution}."
    )


def summary_sentences(rows: list[StudyRow], importances: dict[str, Importance]) -> list[str]:
    """The report's opening paragraph(s), from the comparison rows and the importances (keyed by study title)."""
    sentences = [*synthetic_note(rows), *(study_sentence(row) for row in rows)]
    sentences += [comparison_sentence(a, b) for a, b in compared_pairs(rows)]
    sentences += [sparsity_sentence(rows)]
    sentences += [importance_sentence(title, importance) for title, importance in importances.items()]
    return [sentence for sentence in sentences if sentence]


def link(path: Path, folder: Path) -> str:
    """`path` relative to the report's folder, as a URL path."""
    return quote(Path(os.path.relpath(path, folder)).as_posix())


def _markdown_table(table: Table) -> list[str]:
    def cells(values: list[str]) -> str:
        return "| " + " | ".join(value.replace("|", "\\|") for value in values) + " |"

    return [cells(table.headers), "|" + "---|" * len(table.headers), *(cells(row) for row in table.rows), "", f"*{table.caption}*", ""]


def _markdown_figure(artifact: Artifact, folder: Path) -> list[str]:
    target = link(artifact.path, folder)
    alt = artifact.caption.replace("[", "(").replace("]", ")")  # brackets would end Markdown's alt text
    shown = f'<video src="{target}" controls loop muted></video>' if artifact.is_video else f"![{alt}]({target})"
    return [shown, "", f"*{artifact.caption}*", ""]


def markdown(document: Document, folder: Path) -> str:
    """The whole report.md: title, summary, then each section's tables, notes and figures."""
    lines = [f"# {document.title}", "", *(f"- {sentence}" for sentence in document.summary), ""]
    for section in document.sections():
        lines += [f"## {section}", ""]
        for item in document.section(section):
            if isinstance(item, Table):
                lines += _markdown_table(item)
            elif isinstance(item, Note):
                lines += [f"> {item.text}", ""]
            else:
                lines += _markdown_figure(item, folder)
    return "\n".join(lines)
