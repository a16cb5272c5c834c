"""The fused LIF scan against snnTorch's own `snn.Leaky` stepped through time."""

import pytest
import snntorch as snn
import torch

from study.models.lif_scan import Surrogate, leaky_scan


def stepped(neuron: snn.Leaky, current: torch.Tensor):
    mem, spikes, membrane = torch.zeros_like(current[0]), [], []
    for step in current:
        spk, mem = neuron(step, mem)
        spikes.append(spk)
        membrane.append(mem)
    return torch.stack(spikes), torch.stack(membrane)


def gradients(run, neuron, current, weights):
    """Gradients of a loss on the spikes (and, given weights[1], the membrane) w.r.t. input, beta, threshold."""
    current = current.detach().requires_grad_()
    spikes, membrane = run(current)
    loss = (spikes * weights[0]).sum() + (0 if weights[1] is None else (membrane * weights[1]).sum())
    learned = [p for p in (neuron.beta, neuron.threshold) if p.requires_grad]
    return spikes, membrane, torch.autograd.grad(loss, [current, *learned])


@pytest.mark.parametrize("surrogate", ["fast_sigmoid", "sigmoid"])
@pytest.mark.parametrize("learn", [False, True])
@pytest.mark.parametrize("membrane_in_loss", [False, True])
@pytest.mark.parametrize("beta", [0.8, 1.3])  # 1.3: clamp(0, 1) passes no gradient to beta
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_scan_equals_snn_leaky(surrogate, learn, membrane_in_loss, beta, reset):
    torch.manual_seed(0)
    spike_fn = Surrogate(surrogate, 5.0)
    neuron = snn.Leaky(beta=beta, threshold=0.7, spike_grad=spike_fn, learn_beta=learn, learn_threshold=learn, reset_mechanism=reset)
    current = torch.randn(12, 4, 3, 5, 5) * 1.5  # [T, B, C, H, W]
    weights = (torch.randn_like(current), torch.randn_like(current) if membrane_in_loss else None)

    ours = gradients(lambda c: leaky_scan(c, neuron.beta, neuron.threshold, spike_fn, reset), neuron, current, weights)
    theirs = gradients(lambda c: stepped(neuron, c), neuron, current, weights)

    assert 0.05 < theirs[0].mean() < 0.6  # the layer fires, but not everywhere
    assert torch.equal(ours[0], theirs[0])  # same spikes, bit for bit
    assert torch.equal(ours[1], theirs[1])  # same membrane
    assert len(ours[2]) == len(theirs[2]) == (3 if learn else 1)
    for mine, reference in zip(ours[2], theirs[2]):
        torch.testing.assert_close(mine, reference, rtol=1e-4, atol=1e-5)
    if learn and beta > 1:
        assert ours[2][1] == 0


def test_scan_keeps_float32_state_for_low_precision_input():
    """Under bf16 autocast the convolutions hand over bf16 current; the membrane still integrates in fp32."""
    neuron = snn.Leaky(beta=0.9, threshold=1.0, spike_grad=Surrogate("fast_sigmoid", 25.0))
    current = torch.full((40, 1), 0.01, dtype=torch.bfloat16)
    spikes, membrane = leaky_scan(current, neuron.beta, neuron.threshold, neuron.spike_grad)
    assert membrane.dtype == spikes.dtype == torch.float32
    expected = sum(0.9**k * float(current[0]) for k in range(40))
    assert membrane[-1].item() == pytest.approx(expected, rel=1e-5)


def test_the_two_resets_differ_and_a_reset_to_zero_forgets_the_membrane():
    """After a spike, "zero" starts the membrane again from the new input alone; "subtract" keeps what was above threshold."""
    beta, threshold = torch.tensor(0.5), torch.tensor(1.0)
    current = torch.tensor([1.5, 0.2, 0.0]).view(3, 1)  # [T, B]
    spike_fn = Surrogate("fast_sigmoid", 25.0)
    subtracted = leaky_scan(current, beta, threshold, spike_fn, "subtract")[1].flatten().tolist()
    zeroed = leaky_scan(current, beta, threshold, spike_fn, "zero")[1].flatten().tolist()
    assert subtracted == pytest.approx([1.5, 0.5 * 1.5 + 0.2 - 1.0, 0.5 * (0.5 * 1.5 + 0.2 - 1.0)])
    assert zeroed == pytest.approx([1.5, 0.2, 0.1])
    with pytest.raises(ValueError, match="subtract or zero"):
        leaky_scan(current, beta, threshold, spike_fn, "none")
