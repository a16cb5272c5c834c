"""scikit-learn's 1797 real 8x8 handwritten digits, written in MNIST's on-disk format.

Real data that needs no download (scikit-learn ships it; it is a development dependency): the tests
and the search benchmark train on it, and so can a whole study:
    python -c "from study.data.digits import write_digits_as_mnist; write_digits_as_mnist('digits')"
    python -m study.run mnist --data-dir digits
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from study.data.synthetic import write_idx

TRAIN_SAMPLES = 1437  # the rest (360) is the test split


def write_digits_as_mnist(root: Path) -> Path:
    """Upscale to 28x28 (3x3 blocks, 2-pixel border) and write MNIST idx files under root/MNIST/raw."""
    from sklearn.datasets import load_digits  # scikit-learn is needed here only
    digits = load_digits()
    images = np.kron(digits.images / 16.0 * 255, np.ones((3, 3)))
    images = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(0).permutation(len(images))
    for prefix, part in (("train", order[:TRAIN_SAMPLES]), ("t10k", order[TRAIN_SAMPLES:])):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images[part].round())
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", digits.target[part])
    return Path(root)
