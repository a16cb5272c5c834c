"""Animations: rendered cheaply, written as .mp4 when ffmpeg is installed, else as a .gif by Pillow.

A missing ffmpeg is normal (Pillow comes with matplotlib), never an error.

Matplotlib saves an animation by redrawing the whole figure twice per frame, every label included:
about a second a frame for a few bar charts on a busy 2-core machine. `prerendered` draws the
unchanging part of a figure once and only the changing artists per frame; Pillow then writes
those pictures as they are.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import animation as mpl_animation
from matplotlib.artist import Artist
from PIL import Image

from analysis.artifacts import FIGURE_DPI


@dataclass(frozen=True)
class Prerendered:
    """An animation rendered beforehand: one RGB picture [H, W, 3] (uint8) per frame."""

    pictures: list[np.ndarray]

    def as_matplotlib(self) -> tuple[plt.Figure, mpl_animation.FuncAnimation]:
        """The pictures as a matplotlib animation, pixel for pixel, for writers that grab figures (ffmpeg)."""
        height, width = self.pictures[0].shape[:2]
        figure = plt.figure(figsize=(width / FIGURE_DPI, height / FIGURE_DPI), dpi=FIGURE_DPI)
        image = figure.figimage(self.pictures[0], origin="upper")

        def show(frame: int) -> list[Artist]:
            image.set_data(self.pictures[frame])
            return [image]

        return figure, mpl_animation.FuncAnimation(figure, show, frames=len(self.pictures))


def prerendered(figure: plt.Figure, update: Callable[[int], Sequence[Artist]], frames: int) -> Prerendered:
    """`figure` as `update(frame)` changes it, frame by frame; `update` returns the artists it changed.

    The layout of the first frame holds for all of them. `figure` is closed.
    """
    figure.set_dpi(FIGURE_DPI)
    for artist in update(0):
        artist.set_animated(True)  # left out of the background
    figure.canvas.draw()
    figure.set_layout_engine("none")
    background = figure.canvas.copy_from_bbox(figure.bbox)
    pictures = []
    for frame in range(frames):
        changed = update(frame)
        figure.canvas.restore_region(background)
        for artist in changed:
            figure.draw_artist(artist)
        pictures.append(np.asarray(figure.canvas.buffer_rgba())[..., :3].copy())  # RGBA -> RGB
    plt.close(figure)
    return Prerendered(pictures)


def animation_writer(fps: int) -> tuple[mpl_animation.AbstractMovieWriter, str]:
    """The best available writer and its file suffix."""
    if mpl_animation.writers.is_available("ffmpeg"):
        return mpl_animation.FFMpegWriter(fps=fps), ".mp4"
    return mpl_animation.PillowWriter(fps=fps), ".gif"


@contextlib.contextmanager
def _written_beside(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` that becomes `path` when the block succeeds.

    Unlike `study.files.replaced_atomically` it keeps the suffix: ffmpeg chooses the container by it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{path.stem}.partial-", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        yield Path(partial)
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)


def save_animation(animation: mpl_animation.Animation | Prerendered, path_without_suffix: Path, fps: int) -> Path:
    """Write `animation` as `path_without_suffix` + .mp4 (ffmpeg) or .gif (Pillow); returns the path written."""
    writer, suffix = animation_writer(fps)
    path = Path(f"{path_without_suffix}{suffix}")
    with _written_beside(path) as partial:
        if isinstance(animation, Prerendered) and suffix == ".gif":
            first, *rest = (Image.fromarray(picture) for picture in animation.pictures)
            first.save(partial, format="GIF", save_all=True, append_images=rest, duration=round(1000 / fps), loop=0)
        elif isinstance(animation, Prerendered):
            figure, movie = animation.as_matplotlib()
            try:
                movie.save(partial, writer=writer, dpi=FIGURE_DPI)
            finally:
                plt.close(figure)
        else:
            animation.save(partial, writer=writer, dpi=FIGURE_DPI)
    return path
