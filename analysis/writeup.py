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
from analysis.comparison import StudyRow, joules
from analysis.content import Document, Note, Table, plural, si
from analysis.hyperparameters import Importance
from study.statistics import accuracy_interval, unpaired_accuracy_test
from study.summary import UNSTABLE_DIFFERENCE, Comparison

TIE = 1e-6  # importance shares closer than this count as equal


def _name(row: StudyRow) -> str:
    return f"{'spiking ' if row.spiking else 'conventional '}{row.arch}"


def _ops(row: StudyRow) -> str:
    parts = [f"{si(row.effective_macs)} MACs" if row.effective_macs else "", f"{si(row.effective_acs)} ACs" if row.effective_acs else ""]
    parts.append(f"{si(row.membrane_updates)} membrane updates" if row.membrane_updates else "")
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


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def study_sentence(row: StudyRow) -> str:
    low, high = accuracy_interval(row.test_acc, row.test_samples)
    saw = f", which saw {row.saw}," if row.saw else ""
    sentence = (
        f"The {_name(row)} on {row.dataset}{saw} reached {_percent(row.test_acc)} test accuracy on {plural(row.test_samples, 'sample')} "
        f"(95% CI {_percent(low)}-{_percent(high)}, Clopper-Pearson; best validation accuracy {_percent(row.best_val_acc)}) "
        f"with its best search trial, after {plural(row.search_epochs, 'epoch')} of search over {plural(row.trials, 'trial')}"
    )
    if row.repeat_acc is not None:
        spread = ""
        if row.repeat_acc.alike:
            spread = " (every repeat alike: no interval)"
        elif row.repeat_acc.low is not None:
            spread = f" (95% CI {_percent(row.repeat_acc.low)}-{_percent(row.repeat_acc.high)})"
        sentence += f"; trained again with {plural(row.repeats, 'new seed')}, {_percent(row.repeat_acc.mean)} on average{spread}"
    if row.repeats_caveat:
        sentence += f" (repeats: {row.repeats_caveat})"
    if row.output_silent:
        sentence += ". **Its best model emitted no output spike on the test split**: its accuracy comes from the membrane tie-break alone"
    return sentence + "."


def _gap_clause(winner: StudyRow, loser: StudyRow, comparison: Comparison | None) -> tuple[str, bool]:
    """What the data say about the gap, and whether it is distinguishable at this sample size."""
    if comparison is not None:
        difference = comparison.difference
        spread = ""
        if difference.low is not None:  # the interval of winner - loser (the comparison's is first - second)
            low, high = (difference.low, difference.high) if comparison.first == winner.arch else (-difference.high, -difference.low)
            spread = f"difference 95% CI {100 * low:+.1f} to {100 * high:+.1f} points, "
        unstable = f"; {UNSTABLE_DIFFERENCE}" if comparison.samples_differ_but_seeds_disagree else ""
        return (
            f"over {plural(difference.n, 'repeat')} paired by seed; {spread}{comparison.test}: p = {comparison.p_value:.2g}, "
            f"{plural(winner.test_samples, 'test sample')} each{unstable}",
            comparison.distinguishable,
        )
    p_value = unpaired_accuracy_test(winner.test_acc, loser.test_acc, (winner.test_samples, loser.test_samples))
    return f"single runs; Fisher's exact test on {plural(winner.test_samples, 'test sample')} each: p = {p_value:.2g}", p_value < 0.05


def comparison_sentence(first: StudyRow, second: StudyRow, comparison: Comparison | None = None) -> str:
    """Which of two studies tested more accurately, by how many percentage points, whether that gap could be
    chance at this sample size (`comparison`: their paired repeats; else one run each), at what ratio of estimated energy."""
    accuracy = (lambda row: row.repeat_acc.mean) if comparison is not None else (lambda row: row.test_acc)
    winner, loser = (first, second) if accuracy(first) >= accuracy(second) else (second, first)
    gap = 100 * (accuracy(winner) - accuracy(loser))
    same_data = winner.dataset == loser.dataset
    if not same_data:
        sentence = (
            f"The {_name(winner)} on {winner.dataset} reached {_percent(accuracy(winner))} test accuracy and the {_name(loser)} on "
            f"{loser.dataset} {_percent(accuracy(loser))}; the data sets differ, so the gap mixes task and network"
        )
    else:
        clause, distinguishable = _gap_clause(winner, loser, comparison)
        measured = f"({_percent(accuracy(winner))} against {_percent(accuracy(loser))}, {clause})"
        if gap == 0:
            sentence = f"On {winner.dataset}, the {_name(winner)} and the {_name(loser)} reached the same test accuracy {measured}"
        elif distinguishable:
            sentence = f"On {winner.dataset}, the {_name(winner)} was more accurate than the {_name(loser)} by {gap:.1f} percentage points {measured}"
        else:
            sentence = (
                f"On {winner.dataset}, the {_name(winner)} and the {_name(loser)} are indistinguishable at this sample size: "
                f"{gap:.1f} percentage points apart {measured}"
            )
    if winner.energy_pj > 0 and loser.energy_pj > 0:
        ratio = winner.energy_pj / loser.energy_pj
        scale = f"{ratio:.3g} times the" if ratio >= 1 else f"{1 / ratio:.3g} times less"
        sentence += (
            f"; the {winner.arch} at {scale} estimated energy per inference ({joules(winner.energy_pj)} against "
            f"{joules(loser.energy_pj)}: {_ops(winner)} against {_ops(loser)}; arithmetic only, {winner.energy_table_name}; memory access and data movement, not included, can dominate)"
        )
    return sentence + "."


def caveat_sentences(rows: list[StudyRow]) -> list[str]:
    """What a comparison on each data set can and cannot show."""
    datasets = {row.dataset for row in rows}
    caveats = []
    if "nmnist" in datasets:
        caveats.append(
            "N-MNIST is largely solvable from its events summed over time (a conventional network on summed frames reaches about "
            "99.2%; Iyer et al., \"Is Neuromorphic MNIST neuromorphic?\"): an advantage there is no evidence that a network uses time."
        )
    if "dvsgesture" in datasets:
        caveats.append(
            "On DVS Gesture only the clockwise and counter-clockwise rotations need the order of events; a network that sees the "
            "events summed cannot tell them apart (what each network saw is said above)."
        )
    return caveats


def compared_pairs(rows: list[StudyRow]) -> list[tuple[StudyRow, StudyRow]]:
    """Every spiking study against every conventional one, then studies of one kind on the same data
    (say the spiking CNN and the spiking LSTM on DVS Gesture); with only one kind, every pair."""
    spiking = [row for row in rows if row.spiking]
    conventional = [row for row in rows if not row.spiking]
    if not (spiking and conventional):
        return list(itertools.combinations(rows, 2))
    alike = [(a, b) for a, b in itertools.combinations(rows, 2) if a.spiking == b.spiking and a.dataset == b.dataset]
    return [(s, c) for s in spiking for c in conventional] + alike


def paired(first: StudyRow, second: StudyRow, comparisons: dict) -> Comparison | None:
    """The paired comparison of two rows' repeats, when both are architectures of one experiment that has one."""
    if first.experiment != second.experiment:
        return None
    return comparisons.get((first.experiment, first.arch, second.arch)) or comparisons.get((first.experiment, second.arch, first.arch))


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


def summary_sentences(rows: list[StudyRow], importances: dict[str, Importance], comparisons: dict | None = None) -> list[str]:
    """The report's opening paragraph(s), from the comparison rows, the importances (keyed by study title) and
    the experiments' paired comparisons (keyed by experiment folder and the two architectures)."""
    comparisons = comparisons or {}
    sentences = [*synthetic_note(rows), *(study_sentence(row) for row in rows)]
    sentences += [comparison_sentence(a, b, paired(a, b, comparisons)) for a, b in compared_pairs(rows)]
    sentences += caveat_sentences(rows)
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
