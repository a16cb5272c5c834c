"""Writing matplotlib animations: .mp4 when ffmpeg is installed, otherwise a .gif written by Pillow.

A missing ffmpeg is normal (Pillow comes with matplotlib), never an error.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from matplotlib import animation as mpl_animation

from analysis.artifacts import FIGURE_DPI


def animation_writer(fps: int) -> tuple[mpl_animation.AbstractMovieWriter, str]:
    """The best available writer and its file suffix."""
    if mpl_animation.writers.is_available("ffmpeg"):
        return mpl_animation.FFMpegWriter(fps=fps), ".mp4"
    return mpl_animation.PillowWriter(fps=fps), ".gif"


def save_animation(animation: mpl_animation.Animation, path_without_suffix: Path, fps: int) -> Path:
    """Write `animation` beside `path_without_suffix` as .mp4 or .gif; returns the path written.

    Written under a temporary name first, so a reader never sees half a file. The temporary name
    keeps the suffix: both writers choose the container by it.
    """
    writer, suffix = animation_writer(fps)
    path = Path(f"{path_without_suffix}{suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{path.stem}.partial-", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        animation.save(partial, writer=writer, dpi=FIGURE_DPI)
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)
    return path
