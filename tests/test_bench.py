"""The benchmark compares like with like: the tutorial-style reference computes what our model computes."""

from __future__ import annotations

import torch

from study.reference import ReferenceSCNN
from study.config import Hyperparams
from study.operations import framework_macs
from study.registry import build_model


def test_reference_network_computes_the_same_spikes_as_ours():
    torch.manual_seed(0)
    hp = Hyperparams(num_steps=6, threshold=0.5)
    ours = build_model("nmnist", "scnn", hp).eval()
    reference = ReferenceSCNN(ours, hp).eval()
    frames = (torch.rand(6, 4, 2, 34, 34) < 0.2).float()  # [T, B, C, H, W]
    with torch.no_grad():
        expected = ours.run(frames).scores
        assert expected.sum() > 0
        assert torch.equal(reference.run(frames).scores, expected)
        assert torch.equal(reference.run(frames).scores, expected)  # the reset between passes works


def test_framework_multiply_accumulates_of_the_spiking_cnn():
    model = build_model("nmnist", "scnn", Hyperparams(num_steps=2))
    frames = torch.zeros(2, 3, 2, 34, 34)
    per_sample_step = 12 * 34 * 34 * 2 * 25 + 32 * 17 * 17 * 12 * 25 + 10 * 2048  # conv1 + conv2 (padded) + linear
    assert framework_macs(model, frames) == per_sample_step * 2 * 3
