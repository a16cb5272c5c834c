"""What MNIST's idx files must satisfy before torchvision reads them: their own header, and the dataset's facts.

torchvision checks neither: an empty images file fails with a bare ValueError, a truncated one with an
AssertionError, and a label of 200 reaches the loss as an IndexError, or, under a class-balanced limit,
drops its sample without a word. So each pair of files is checked when a split is opened (the driver opens
both before any trial): the idx header (unsigned bytes, the number of dimensions), the sizes it promises
against the file's length, the image size, one label per image, and every label a class.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from study.errors import UserError

UNSIGNED_BYTE = 0x08  # the idx type code of MNIST's images and labels


def idx_problem(path: Path, dimensions: int) -> tuple[tuple[int, ...] | None, str | None]:
    """(the sizes the idx header of `path` declares, None) or (None, what is wrong with the file), checked
    against the file's length without reading its data."""
    length = path.stat().st_size
    header_length = 4 + 4 * dimensions
    if length == 0:
        return None, "it is empty"
    if length < header_length:
        return None, f"it is {length} bytes long, shorter than an idx header of {dimensions} dimension(s) ({header_length} bytes)"
    with open(path, "rb") as file:
        header = file.read(header_length)
    zero, code, ndim = struct.unpack(">HBB", header[:4])
    if zero != 0 or code != UNSIGNED_BYTE or ndim != dimensions:
        return None, (
            f"its header ({header[:4].hex()}) does not start an idx file of unsigned bytes in {dimensions} dimension(s) "
            f"(expected 0000080{dimensions})"
        )
    sizes = struct.unpack(f">{dimensions}I", header[4:])
    expected = header_length + int(np.prod(sizes, dtype=np.int64))
    if length != expected:
        shape = "x".join(map(str, sizes))
        return None, (
            f"its header promises {shape} bytes of data ({expected} bytes in all) but the file is {length} bytes long "
            f"({'truncated' if length < expected else 'with bytes beyond its data'})"
        )
    return sizes, None


def check_mnist_files(images: Path, labels: Path, image_size: tuple[int, int], num_classes: int) -> None:
    """A UserError naming the file and what is wrong, unless `images` and `labels` are a whole, matching pair."""
    image_sizes, problem = idx_problem(images, 3)
    if problem is None and tuple(image_sizes[1:]) != tuple(image_size):
        problem = f"its images are {image_sizes[1]}x{image_sizes[2]} pixels, not MNIST's {image_size[0]}x{image_size[1]}"
    if problem is not None:
        raise _unreadable(images, problem)
    label_sizes, problem = idx_problem(labels, 1)
    if problem is None:
        values = np.fromfile(labels, dtype=np.uint8, offset=8)
        wrong = np.flatnonzero(values >= num_classes)
        if len(wrong):
            problem = (
                f"{len(wrong)} of its {len(values)} labels are not classes 0 to {num_classes - 1} "
                f"(label {values[wrong[0]]} at index {wrong[0]})"
            )
        elif label_sizes[0] != image_sizes[0]:
            problem = f"it holds {label_sizes[0]} labels, but {images.name} beside it holds {image_sizes[0]} images: one label per image"
    if problem is not None:
        raise _unreadable(labels, problem)


def _unreadable(path: Path, problem: str) -> UserError:
    return UserError(
        f"Cannot read {path} ({problem}). The file is truncated or corrupt: restore it (download MNIST again, "
        f"or remove the file so that it is downloaded) and rerun."
    )
