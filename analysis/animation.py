"""Animations: rendered cheaply, written as .mp4 when ffmpeg is installed, else as a .gif by Pillow.

A missing ffmpeg is normal (Pillow comes with matplotlib), never an error.

Matplotlib saves an animation by redrawing the whole figure twice per frame, every label included:
about a second a frame for a few bar charts on a busy 2-core machine. `prerendered` draws the
unchanging part of a figure once and only the changing artists per frame; Pillow then writes
those pictures as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import animation as mpl_animation
from matplotlib.artist import Artist
from PIL import Image

from analysis.artifacts import FIGURE_DPI
from study.files import replaced_atomically


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


def step_fps(steps: int) -> int:
    """Frames a second for one frame per time step: T steps play in about 5 seconds, never slower than 2 frames a second."""
    return max(2, steps // 5)


def save_animation(animation: mpl_animation.Animation | Prerendered, path_without_suffix: Path, fps: int) -> Path:
    """Write `animation` as `path_without_suffix` + .mp4 (ffmpeg) or .gif (Pillow); returns the path written."""
    writer, suffix = animation_writer(fps)
    path = Path(f"{path_without_suffix}{suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(path) as partial:
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
