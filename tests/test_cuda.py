"""The CUDA paths: the fused scan, one-call time folding, bf16 autocast and the epoch loop on a GPU.

Marked `cuda`; they run where torch sees a GPU (`python -m study.gpu_check` runs them all and records
the outcome). `tests/test_models.py::test_training_step_on_cuda_matches_cpu` is one of them.
"""

from __future__ import annotations

import math

import pytest
import snntorch as snn
import torch
import torch.nn.functional as F

from study.config import Hyperparams, StudySettings
from study.loop import input_adapter, make_loader, measure, trial_datasets, train_one_epoch
from study.models.common import fold_time
from study.models.lif_scan import Surrogate, leaky_scan
from study.precision import autocast
from study.registry import build_model

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]


@pytest.mark.parametrize("surrogate", ["fast_sigmoid", "sigmoid"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_fused_scan_on_cuda_equals_snn_leaky_stepped(surrogate, reset):
    torch.manual_seed(0)
    spike_fn = Surrogate(surrogate, 5.0)
    neuron = snn.Leaky(beta=0.8, threshold=0.7, spike_grad=spike_fn, learn_beta=True, learn_threshold=True, reset_mechanism=reset).cuda()
    current = (torch.randn(16, 4, 3, 8, 8) * 1.5).cuda().requires_grad_()  # [T, B, C, H, W]
    weights = torch.randn_like(current)

    spikes, _ = leaky_scan(current, neuron.beta, neuron.threshold, spike_fn, reset)
    ours = torch.autograd.grad((spikes * weights).sum(), [current, neuron.beta, neuron.threshold])
    mem, stepped = torch.zeros_like(current[0]), []
    for step in current:
        spk, mem = neuron(step, mem)
        stepped.append(spk)
    stepped = torch.stack(stepped)
    theirs = torch.autograd.grad((stepped * weights).sum(), [current, neuron.beta, neuron.threshold])

    assert 0.05 < float(stepped.mean()) < 0.6
    assert torch.equal(spikes, stepped)
    for mine, reference in zip(ours, theirs):
        torch.testing.assert_close(mine, reference, rtol=1e-4, atol=1e-4)


def test_time_is_folded_into_one_call_on_cuda():
    calls = []
    conv = torch.nn.Conv2d(2, 4, 3, padding=1).cuda()
    conv.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    x = torch.rand(100, 8, 2, 16, 16, device="cuda")  # [T, B, C, H, W]: on a CPU this would be chunked
    folded = fold_time(conv, x)
    assert calls == [100 * 8]
    torch.testing.assert_close(folded.cpu(), fold_time(conv.cpu(), x.cpu()), rtol=1e-4, atol=1e-5)


def test_bf16_training_step_on_cuda_stays_near_fp32():
    torch.manual_seed(0)
    hp = Hyperparams(num_steps=16)
    model = build_model("nmnist", "scnn", hp).cuda()
    x = (torch.rand(16, 32, 2, 34, 34, device="cuda") < 0.1).float()  # [T, B, C, H, W]
    targets = torch.randint(0, 10, (32,), device="cuda")
    losses = {}
    for precision in ("fp32", "bf16"):
        model.zero_grad()
        with autocast(precision, torch.device("cuda")):
            output = model.run(x)
        loss = F.cross_entropy(output.scores.float(), targets)
        loss.backward()
        losses[precision] = float(loss)
        assert output.spikes["lif1"].dtype == torch.float32  # spikes and membranes stay fp32 under autocast
        assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    assert math.isfinite(losses["bf16"]) and losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)


@pytest.mark.parametrize("arch", ["cnn", "scnn"])
def test_an_epoch_trains_and_measures_on_cuda(data_root, arch):
    torch.manual_seed(0)
    hp = Hyperparams(num_steps=8, batch_size=16)
    settings = StudySettings("nmnist", arch, data_root, 1)
    train_set, val_set = trial_datasets(settings, hp)
    model = build_model("nmnist", arch, hp).cuda()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    adapt = input_adapter("nmnist", arch, hp)
    device = torch.device("cuda")
    trained = train_one_epoch(model, make_loader(train_set, hp.batch_size, shuffle=True), optimizer, adapt, device, "bf16")
    measured = measure(model, make_loader(val_set, 64, shuffle=False), adapt, device, "bf16")
    assert math.isfinite(trained.loss) and math.isfinite(measured.loss) and 0 <= measured.acc <= 1
    assert any(not torch.equal(old, new) for old, new in zip(before, model.parameters()))
