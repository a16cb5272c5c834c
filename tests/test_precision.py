"""Precision: bf16 autocast only where the hardware computes it natively, spikes exact either way."""

import pytest
import torch

from study import precision
from study.config import Hyperparams
from study.precision import autocast, resolve
from study.registry import build_model


def test_auto_is_bf16_exactly_where_bf16_is_native(monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    assert resolve("auto", "cpu") == "fp32"
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)
    assert resolve("auto", "cpu") == "bf16"
    assert resolve("fp32", "cpu") == "fp32" and resolve("bf16", "cpu") == "bf16"  # asked for: given
    with pytest.raises(ValueError, match="fp16"):
        resolve("fp16", "cpu")


def test_bf16_autocast_runs_the_convolutions_in_bf16_and_the_neurons_in_fp32():
    torch.manual_seed(0)
    model = build_model("nmnist", "scnn", Hyperparams(num_steps=4, threshold=0.5))
    conv_outputs = []
    model.blocks[0].conv.register_forward_hook(lambda layer, inputs, output: conv_outputs.append(output.dtype))
    frames = (torch.rand(4, 3, 2, 34, 34) < 0.2).float()  # [T, B, C, H, W]
    with autocast("bf16", "cpu"):
        output = model.run(frames)
    assert set(conv_outputs) == {torch.bfloat16}
    assert output.membrane.dtype == torch.float32 and output.scores.dtype == torch.float32
    assert set(output.spikes["lif2"].unique().tolist()) <= {0.0, 1.0} and output.spikes["lif1"].sum() > 0
    with autocast("fp32", "cpu"):
        assert model.run(frames).spikes["lif1"].dtype == torch.float32
