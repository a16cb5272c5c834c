"""What a report is made of, before it becomes Markdown or HTML: sentences, tables, figures and notes."""

from __future__ import annotations

from dataclasses import dataclass, field

from analysis.artifacts import Artifact

# The report's sections, in order; an Artifact, Table or Note names the one it belongs to.
SECTIONS = ("Study", "Comparison", "Grad-CAM", "Spikes", "Weights")


@dataclass(frozen=True)
class Table:
    caption: str
    section: str
    headers: list[str]
    rows: list[list[str]]  # already formatted, one string per header


@dataclass(frozen=True)
class Note:
    """A sentence where a figure would be, e.g. why it was left out."""

    section: str
    text: str


Item = Artifact | Table | Note


@dataclass
class Document:
    """The report's content: its title, opening sentences and items, rendered by analysis.page and analysis.writeup."""

    title: str
    summary: list[str] = field(default_factory=list)  # the opening sentences, each derived from the numbers
    items: list[Item] = field(default_factory=list)  # shown in this order within their sections

    def sections(self) -> list[str]:
        """SECTIONS that have something to show, then any other section an analysis step named."""
        used = {item.section for item in self.items}
        return [s for s in SECTIONS if s in used] + sorted(used - set(SECTIONS))

    def section(self, name: str) -> list[Item]:
        return [item for item in self.items if item.section == name]


def plural(count: int, word: str) -> str:
    """'1 trial', '2 trials': counts in generated sentences."""
    if count == 1:
        return f"{count} {word}"
    return f"{count} {word[:-1]}ies" if word.endswith("y") else f"{count} {word}s"


def si(value: float) -> str:
    """A large count in three significant digits with a metric prefix: 792k, 13.5M, 1.2G."""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{prefix}"
    return f"{value:.3g}"
