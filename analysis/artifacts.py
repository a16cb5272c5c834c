"""What every analysis step hands to the report: files it wrote, each with a caption and a section.

Figures are drawn with matplotlib's non-interactive Agg backend (the analysis runs headless).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from study.files import replaced_atomically  # noqa: E402

FIGURE_DPI = 120


@dataclass(frozen=True)
class Artifact:
    """One file for the report: an image, an animation or a table, with a one-line caption."""

    path: Path  # where it was written (the report links it relative to its own folder)
    caption: str  # one factual line, shown under the figure
    section: str  # the report heading it belongs under, e.g. "Grad-CAM"

    @property
    def is_video(self) -> bool:
        """A movie (shown with a player) rather than an image (GIF animations are images)."""
        return self.path.suffix.lower() in (".mp4", ".webm")


def save_figure(figure: plt.Figure, path: Path) -> Path:
    """Write `figure` as a PNG (atomically) and close it; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(path) as partial:
        figure.savefig(partial, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    plt.close(figure)
    return path
