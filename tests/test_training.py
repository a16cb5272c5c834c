"""Training really learns: scikit-learn's 1797 real 8x8 digits, written as MNIST idx files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from study.config import Hyperparams
from study.data import SampleRequest, final_test_set, train_val_datasets
from study.data.frames import FrameSpec
from study.data.sources import MNIST_SOURCE
from study.data.synthetic import _write_idx
from study.registry import build_model
from study.trainable import OPTIMIZERS, evaluate, input_adapter, make_loader, train_one_epoch


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory):
    """load_digits upscaled to 28x28 (3x3 blocks, 2-pixel border) in MNIST's on-disk format."""
    digits = load_digits()
    images = np.kron(digits.images / 16.0 * 255, np.ones((3, 3)))
    images = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    root = tmp_path_factory.mktemp("digits")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    order = np.random.default_rng(0).permutation(len(images))
    train, test = order[:1437], order[1437:]
    for prefix, part in (("train", train), ("t10k", test)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images[part].round())
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", digits.target[part])
    return root


@pytest.mark.parametrize(
    "arch, hp, epochs, floor",
    [
        ("cnn", Hyperparams(lr=2e-3, batch_size=32), 4, 0.9),
        ("scnn", Hyperparams(lr=2e-3, batch_size=32, num_steps=8, beta=0.8, population=1), 4, 0.85),
    ],
)
def test_training_learns_real_digits(digits_root, arch, hp, epochs, floor):
    torch.manual_seed(0)
    torch.set_num_threads(2)
    request = SampleRequest(FrameSpec(1))
    train_set, val_set = train_val_datasets(MNIST_SOURCE, digits_root, request)
    model = build_model("mnist", arch, hp)
    optimizer = OPTIMIZERS[hp.optimizer](model.parameters(), hp)
    adapt = input_adapter("mnist", arch, hp)
    before = evaluate(model, make_loader(val_set, 256, shuffle=False), adapt, "cpu")
    for epoch in range(epochs):
        train = train_one_epoch(model, make_loader(train_set, hp.batch_size, shuffle=True, seed=epoch), optimizer, adapt, "cpu")
    val = evaluate(model, make_loader(val_set, 256, shuffle=False), adapt, "cpu")
    test = evaluate(model, make_loader(final_test_set(MNIST_SOURCE, digits_root, request), 256, shuffle=False), adapt, "cpu")
    assert before.acc < 0.3
    assert val.acc >= floor and test.acc >= floor, (train, val, test)
    assert val.loss < before.loss
