"""Models: shapes on every dataset, population coding, state handling, and snnTorch 1.0.0 pitfalls."""

from __future__ import annotations

import pytest
import snntorch as snn
import torch
import torch.nn.functional as F
from snntorch import functional as SF
from snntorch._neurons.neurons import SpikingNeuron

from study.config import Hyperparams
from study.models.common import class_scores
from study.registry import ARCHITECTURES, DATASETS, build_model


def model_input(dataset: str, arch: str, hp: Hyperparams, batch: int = 3) -> torch.Tensor:
    shape = DATASETS[dataset].source.input_shape(hp.frame_size)
    if ARCHITECTURES[arch].spiking:
        return (torch.rand(hp.num_steps, batch, *shape) < 0.3).float()  # [T, B, C, H, W]
    return torch.rand(batch, *shape)


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_runs_on_every_dataset(dataset, arch):
    hp = Hyperparams(num_steps=4, population=3, frame_size=32 if dataset == "dvsgesture" else 0)
    model = build_model(dataset, arch, hp)
    output = model.run(model_input(dataset, arch, hp))
    classes = DATASETS[dataset].source.num_classes
    assert output.scores.shape == (3, classes)
    output.scores.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    if ARCHITECTURES[arch].spiking:
        assert output.spikes["out"].shape == (4, 3, classes * 3)
        assert output.membrane.shape == (4, 3, classes * 3)


def test_population_coded_scores_are_snntorch_count_loss():
    spikes = (torch.rand(6, 4, 10 * 5) < 0.4).float()  # [T, B, classes x population]
    targets = torch.tensor([1, 7, 3, 0])
    scores = class_scores(spikes, 10)
    assert torch.equal(scores[2, 4], spikes[:, 2, 20:25].sum())
    expected = SF.ce_count_loss(population_code=True, num_classes=10)(spikes, targets)
    assert torch.allclose(F.cross_entropy(scores, targets), expected)


def test_snntorch_ce_rate_loss_with_population_code_still_needs_weight():
    """Canary: why the models do not use ce_rate_loss. If this starts passing, the workaround can go."""
    with pytest.raises(TypeError):
        SF.ce_rate_loss(population_code=True, num_classes=10)(torch.rand(6, 4, 50), torch.tensor([1, 2, 3, 4]))


def test_models_stay_off_snntorchs_global_neuron_list():
    before = len(SpikingNeuron.instances)
    for _ in range(5):
        build_model("nmnist", "scnn", Hyperparams())
        build_model("nmnist", "slstm", Hyperparams())
    assert len(SpikingNeuron.instances) == before


@pytest.mark.parametrize("arch", ["scnn", "slstm"])
def test_state_is_reset_for_every_batch(arch):
    torch.manual_seed(0)
    hp = Hyperparams(num_steps=6, threshold=0.3)
    model = build_model("nmnist", arch, hp).eval()
    first, other = model_input("nmnist", arch, hp), model_input("nmnist", arch, hp)
    with torch.no_grad():
        reference = model.run(first)
        model.run(other)  # leaves other state on the neuron modules
        again = model.run(first)
    assert reference.spikes["out"].sum() > 0
    for layer in reference.spikes:
        assert torch.equal(reference.spikes[layer], again.spikes[layer])
    assert torch.equal(reference.membrane, again.membrane)


def test_snntorch_slstm_forgets_when_input_and_hidden_sizes_differ():
    """Canary for the snnTorch 1.0.0 bug the spiking LSTM's projection layer avoids."""
    torch.manual_seed(0)
    lstm = snn.SLSTM(8, 16)
    syn, mem = torch.zeros(2, 16), torch.zeros(2, 16)
    _, syn, mem = lstm(torch.ones(2, 8), syn, mem)
    _, syn_after_zero_input, _ = lstm(torch.zeros(2, 8), syn, mem)
    _, syn_from_scratch, _ = lstm(torch.zeros(2, 8), torch.zeros(2, 16), torch.zeros(2, 16))
    assert torch.equal(syn_after_zero_input, syn_from_scratch)  # the state of step 0 was thrown away


def test_the_spiking_lstms_slstm_layer_keeps_its_state():
    """With the projection making input_size == hidden_size, snn.SLSTM's state survives a step."""
    torch.manual_seed(0)
    lstm = build_model("nmnist", "slstm", Hyperparams(hidden=16)).lstm
    zeros = torch.zeros(2, 16)
    _, syn, mem = lstm(torch.ones(2, 16), zeros, zeros)
    _, syn_carried, mem_carried = lstm(torch.zeros(2, 16), syn, mem)
    _, syn_fresh, mem_fresh = lstm(torch.zeros(2, 16), zeros, zeros)
    assert not torch.allclose(syn_carried, syn_fresh) and not torch.allclose(mem_carried, mem_fresh)


def test_spiking_lstm_carries_state_across_time_steps():
    torch.manual_seed(0)
    hp = Hyperparams(num_steps=8)
    model = build_model("nmnist", "slstm", hp).eval()
    pulse = torch.zeros(8, 2, 2, 34, 34)
    pulse[0] = 3.0  # input at the first step only
    with torch.no_grad():
        driven = model.run(pulse)
        silent = model.run(torch.zeros_like(pulse))
    # After the pulse the input is the same (zero), so any difference is memory.
    assert not torch.allclose(driven.membrane[1:], silent.membrane[1:])
    assert not torch.equal(driven.spikes["lstm"][3:], silent.spikes["lstm"][3:])


def test_spiking_cnn_equals_stepping_the_whole_network_with_snn_leaky():
    """Folding stateless layers over time gives the same spikes and gradients as the per-step loop."""
    torch.manual_seed(0)
    hp = Hyperparams(num_steps=5, population=2, learn_beta=True, learn_threshold=True, threshold=0.5)
    model = build_model("nmnist", "scnn", hp)
    x = model_input("nmnist", "scnn", hp, batch=4)

    folded = model.run(x)
    folded.scores.sum().backward()
    folded_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    mems = [torch.zeros(())] * 3
    out_spikes = []
    for step in x:  # snnTorch tutorial style: the whole network once per time step
        spikes = step
        for index, (block, neuron) in enumerate(zip(model.blocks, model.neurons)):
            spikes, mems[index] = neuron(block(spikes), mems[index])
        spk3, mems[2] = model.output_neurons(model.classifier(spikes), mems[2])
        out_spikes.append(spk3)
    stepped = torch.stack(out_spikes)
    class_scores(stepped, 10).sum().backward()

    assert folded.spikes["out"].sum() > 0
    assert torch.equal(folded.spikes["out"], stepped)
    for folded_grad, parameter in zip(folded_grads, model.parameters()):
        torch.testing.assert_close(folded_grad, parameter.grad, rtol=1e-4, atol=1e-5)  # summation order differs


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_training_step_on_cuda_matches_cpu(arch):
    torch.manual_seed(0)
    hp = Hyperparams(num_steps=4, population=2)
    model = build_model("nmnist", arch, hp)
    x = model_input("nmnist", arch, hp)
    on_cpu = model.run(x).scores
    on_cpu.sum().backward()
    cpu_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    on_gpu = model.cuda().run(x.cuda()).scores
    on_gpu.sum().backward()
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-3, atol=1e-3)
    for cpu_grad, parameter in zip(cpu_grads, model.parameters()):
        torch.testing.assert_close(parameter.grad.cpu(), cpu_grad, rtol=1e-2, atol=1e-3)
