"""Showing analysis artifacts inline in a Jupyter notebook (the notebooks hold no logic of their own)."""

from __future__ import annotations

from collections.abc import Iterable

from analysis.artifacts import Artifact


def show(artifacts: Iterable[Artifact | None]) -> None:
    """Display each artifact with its caption: images and GIFs as images, movies as videos (None: skipped)."""
    from IPython.display import Image, Markdown, Video, display  # only inside a notebook

    for artifact in artifacts:
        if artifact is None:
            continue
        if artifact.is_video:
            display(Video(str(artifact.path), embed=True))
        else:
            display(Image(filename=str(artifact.path)))
        display(Markdown(f"*{artifact.caption}*"))
