"""Operation counts: hand-checkable cases, invariance to batching and chunking, and neurobench itself as the reference."""

from __future__ import annotations

import json
import re

import pytest
import torch
from neurobench.metrics.utils.layers import single_layer_MACs
from neurobench.metrics.workload import ActivationSparsity, MembraneUpdates, SynapticOperations
from neurobench.models import SNNTorchModel, TorchModel
from torch import nn

from study.reference import ReferenceSCNN
from study.config import Hyperparams
from study.energy import HOROWITZ_FLOAT32, HOROWITZ_INT8, EnergyTable, load_energy_table
from study.errors import UserError
from study.models import Output, common
from study.operations import count_operations, framework_macs, lstm_cell_products
from study.registry import build_model

STEPS = 4


class TinySpiking(nn.Module):
    """conv 1->2 (2x2 kernel of ones) - Heaviside spikes - linear 8->3 - linear 3->2: countable by hand."""

    spiking = True

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 2, bias=False)
        nn.init.ones_(self.conv.weight)
        self.fc = nn.Linear(8, 3)
        self.readout = nn.Linear(3, 2)

    def run(self, x: torch.Tensor) -> Output:
        current = self.conv(x.flatten(0, 1)).flatten(1)  # [T*B, 8]
        spikes = (current > 0).float()
        scores = self.readout(self.fc(spikes)).unflatten(0, x.shape[:2]).sum(0)
        return Output(scores, {"hidden": spikes.unflatten(0, x.shape[:2])})


def test_operation_counts_are_exact_on_a_hand_checkable_network():
    torch.manual_seed(0)
    corners = torch.zeros(3, 3)
    corners[0, 0] = corners[2, 2] = 1
    sample = torch.stack([corners, torch.ones(3, 3)])[:, None, None]  # [T=2, 1, 1, 3, 3]
    counted = count_operations(TinySpiking(), sample.expand(2, 2, 1, 3, 3))  # the same sample twice
    # conv on spikes: t=0 each corner spike reaches 1 output position x 2 channels (4); t=1 nine spikes
    # reach 16 positions x 2 channels (32). fc on hidden spikes: 4 then 8 spikes x 3 outputs (36).
    assert counted.effective_acs == 4 + 32 + 36
    # readout on fc's analog output: 3 x 2 weights at each of 2 steps.
    assert counted.effective_macs == 12 and counted.effective == 84
    # dense: conv 2 steps x 4 positions x 4 weights x 2 channels, fc 2 x 8 x 3, readout 2 x 3 x 2
    assert counted.dense == 64 + 48 + 12
    assert counted.activation_sparsity == pytest.approx(4 / 16)  # 12 of 16 hidden neurons fired
    assert counted.parameters == 8 + 27 + 8 and counted.model_bytes == 4 * 43
    assert counted.samples == 2 and [layer.binary for layer in counted.layers] == [True, True, False]


def test_zero_inputs_and_zero_weights_are_skipped_in_effective_macs():
    model = build_model("mnist", "cnn", Hyperparams()).eval()
    image = torch.rand(1, 1, 28, 28)
    image[..., :14, :] = 0  # the top half blank
    with torch.no_grad():
        model.features[0][0].conv.weight[:6] = 0  # half the first layer's kernels pruned
    counted = count_operations(model, image)
    first = counted.layers[0]
    blank_aware = first.effective / first.dense
    assert not first.binary and 0.15 < blank_aware < 0.3  # about half the inputs x half the kernels
    # dense: every real input x weight product, the padding excluded: 12 kernels x (28 - 2 border rows) ...
    assert first.dense < 12 * 28 * 28 * 25 and counted.dense < framework_macs(model, image)


def test_the_cnn_costs_macs_and_no_membrane_updates():
    counted = count_operations(build_model("mnist", "cnn", Hyperparams()).eval(), torch.rand(3, 1, 28, 28))
    assert counted.effective_macs > 0 and counted.effective_acs == 0 and counted.membrane_updates == 0
    assert 0 < counted.activation_sparsity < 1


def test_a_silent_spiking_network_spends_only_its_first_layer():
    model = build_model("nmnist", "scnn", Hyperparams(num_steps=STEPS, threshold=1e6)).eval()
    counted = count_operations(model, torch.rand(STEPS, 3, 2, 34, 34) * 3 + 0.01)  # analog, nowhere zero: MACs
    assert counted.effective_macs == counted.layers[0].dense > 0
    assert counted.effective_acs == 0 and counted.activation_sparsity == 1.0


def test_counts_do_not_change_with_batch_size_or_chunking(monkeypatch):
    torch.manual_seed(1)
    model = build_model("nmnist", "scnn", Hyperparams(num_steps=STEPS, threshold=0.3)).eval()
    # Event counts: mostly 0 or 1, a few 2s. Counted per call, a chunk with no 2 in it would be ACs.
    events = torch.poisson(torch.full((STEPS, 8, 2, 34, 34), 0.05))
    assert events.max() > 1
    whole = count_operations(model, events)
    assert count_operations(model, events, batch_size=1) == whole
    monkeypatch.setattr(common, "CPU_FOLD_SAMPLES", 1)  # the CPU path: one time step at a time
    assert count_operations(model, events, batch_size=3) == whole
    monkeypatch.setattr(common, "CPU_FOLD_SAMPLES", 10**6)  # the GPU's path: every step in one call
    assert count_operations(model, events) == whole
    assert not whole.layers[0].binary and all(layer.binary for layer in whole.layers[1:])
    assert whole.effective_acs > 0 and whole.membrane_updates > 0


# ---- neurobench as the reference -----------------------------------------------------------


def neurobench_counts(model, data: torch.Tensor) -> tuple[dict, float, float]:
    """neurobench's SynapticOperations, ActivationSparsity and MembraneUpdates of `model` on `data` `[B, T, ...]` or `[B, ...]`."""
    model.register_hooks()
    predictions = model(data)
    batch = (data, torch.zeros(len(data)))
    results = SynapticOperations()(model, predictions, batch), ActivationSparsity()(model, predictions, batch), MembraneUpdates()(model, predictions, batch)
    model.cleanup_hooks()
    return results


def analog_events(steps: int, batch: int) -> torch.Tensor:
    """Scaled event counts `[T, B, 2, 34, 34]`: every step has values that are not spikes, as calibrated input has."""
    torch.manual_seed(2)
    return torch.poisson(torch.full((steps, batch, 2, 34, 34), 0.1)) * 0.7


def test_the_spiking_cnn_counts_as_neurobench_counts_its_twin():
    hp = Hyperparams(num_steps=STEPS, threshold=0.3, blocks=2)
    torch.manual_seed(0)
    ours = build_model("nmnist", "scnn", hp).eval()
    inputs = analog_events(STEPS, 5)
    twin = ReferenceSCNN(ours, hp).net  # the same weights, snnTorch neurons stepped per time step with init_hidden
    with torch.no_grad():
        # The twin multiplies by the input scale inside our first layer's place: fold it into the data it sees.
        synaptic, sparsity, updates = neurobench_counts(SNNTorchModel(twin), (inputs * ours.input_scale).transpose(0, 1))
    counted = count_operations(ours, inputs)
    assert counted.effective_acs > 0 and counted.effective_macs > 0
    assert counted.effective_macs == synaptic["Effective_MACs"]
    assert counted.effective_acs == synaptic["Effective_ACs"]
    assert counted.dense == synaptic["Dense"]
    assert counted.activation_sparsity == pytest.approx(sparsity, abs=1e-12)
    assert counted.membrane_updates == updates


def test_the_cnn_counts_as_neurobench_counts_it():
    torch.manual_seed(0)
    model = build_model("mnist", "cnn", Hyperparams(blocks=3, batch_norm=True)).eval()
    images = torch.rand(6, 1, 28, 28)
    images[images < 0.4] = 0
    with torch.no_grad():
        synaptic, sparsity, updates = neurobench_counts(TorchModel(model), images)
    counted = count_operations(model, images)
    assert counted.effective_macs == synaptic["Effective_MACs"] and synaptic["Effective_ACs"] == counted.effective_acs == 0
    assert counted.dense == synaptic["Dense"]
    assert counted.activation_sparsity == pytest.approx(sparsity, abs=1e-12)
    assert counted.membrane_updates == updates == 0


class StepwiseSLSTM(nn.Module):
    """Our spiking LSTM run whole, as neurobench's `custom_forward` wants: `[B, T, ...]` in, output spikes `[T, B, ...]` out."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        return self.model.run(data.transpose(0, 1)).spikes["out"]


def test_the_spiking_lstm_counts_as_neurobench_counts_it():
    torch.manual_seed(0)
    model = build_model("nmnist", "slstm", Hyperparams(num_steps=STEPS, hidden=32, lstm_threshold=0.05)).eval()
    inputs = analog_events(STEPS, 3)
    with torch.no_grad():
        # Its recurrent layers are snnTorch modules called once per step: neurobench hooks them as they are. The
        # output layer runs as one fused scan, which neurobench does not see: its share is taken off ours below.
        synaptic, sparsity, updates = neurobench_counts(SNNTorchModel(StepwiseSLSTM(model), custom_forward=True), inputs.transpose(0, 1))
        output = model.run(inputs)
    counted = count_operations(model, inputs)
    assert counted.effective_acs > 0 and counted.effective_macs > 0
    assert counted.effective_macs == synaptic["Effective_MACs"]
    assert counted.effective_acs == synaptic["Effective_ACs"]
    assert counted.dense == synaptic["Dense"]
    output_updates = (output.membrane[0].numel() + torch.count_nonzero(output.membrane.diff(dim=0))) / 3
    assert counted.membrane_updates - output_updates == updates
    # Activation sparsity likewise: our zeros and activations less the output layer's spikes are neurobench's.
    activations = sum(spikes.numel() for spikes in output.spikes.values())
    out = output.spikes["out"]
    hidden_zeros = counted.activation_sparsity * activations - (out.numel() - int(torch.count_nonzero(out)))
    assert hidden_zeros / (activations - out.numel()) == pytest.approx(sparsity, abs=1e-12)
    assert counted.activation_sparsity != pytest.approx(sparsity, abs=1e-5)  # the output layer's share is not negligible


def test_lstm_cell_products_equal_neurobench_on_sparse_input_and_state():
    torch.manual_seed(3)
    cell = nn.LSTMCell(6, 5)
    x, h, c = (torch.randn(4, n) * (torch.rand(4, n) < 0.5) for n in (6, 5, 5))
    for dense in (False, True):
        expected, _ = single_layer_MACs((x, (h, c)), cell, total=dense)
        assert lstm_cell_products(cell, x, (h, c), dense) == expected


# ---- energy --------------------------------------------------------------------------------


def test_energy_is_counts_times_the_table():
    model = build_model("nmnist", "scnn", Hyperparams(num_steps=STEPS, threshold=0.3)).eval()
    counted = count_operations(model, analog_events(STEPS, 2))
    assert counted.effective_macs > 0 and counted.effective_acs > 0 and counted.membrane_updates > 0
    table = EnergyTable("test", "distinct figures", mac_pj=3.0, ac_pj=0.5, membrane_update_pj=7.0)
    expected = counted.effective_macs * 3.0 + counted.effective_acs * 0.5 + counted.membrane_updates * 7.0
    assert table.energy_pj(counted) == pytest.approx(expected)
    assert HOROWITZ_INT8.energy_pj(counted) < HOROWITZ_FLOAT32.energy_pj(counted) / 10


def test_an_energy_table_file_overrides_the_default(tmp_path):
    path = tmp_path / "7nm.json"
    path.write_text(json.dumps({"mac_pj": 1.0, "ac_pj": 0.25, "membrane_update_pj": 0.5, "source": "my estimate"}))
    table = load_energy_table(path)
    assert (table.name, table.source, table.mac_pj, table.ac_pj, table.membrane_update_pj) == ("7nm", "my estimate", 1.0, 0.25, 0.5)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot be read"),
        ("{mac_pj: 1", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"mac_pj": 1}', "lacks ac_pj, membrane_update_pj"),
        ('{"mac_pj": 1, "ac_pj": -1, "membrane_update_pj": 1}', "ac_pj = -1"),
        ('{"mac_pj": 1, "ac_pj": "0.9", "membrane_update_pj": 1}', "ac_pj = '0.9'"),
        ('{"mac_pj": 1, "ac_pj": 1, "membrane_update_pj": 1, "mac": 2}', "unknown keys mac"),
        ('{"mac_pj": 1' + "0" * 400 + ', "ac_pj": 1, "membrane_update_pj": 1}', "mac_pj = 1000"),  # too large for a float
    ],
)
def test_a_bad_energy_table_is_refused_naming_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "table.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=f"Energy table {path}: .*{re.escape(message)}"):
        load_energy_table(path)


def test_the_report_stops_on_a_bad_energy_table_before_any_work(tmp_path, capsys):
    from analysis.report import main

    (tmp_path / "table.json").write_text('{"mac_pj": 1}')
    assert main(["no-such-experiment", "--out-dir", str(tmp_path / "reports"), "--energy-table", str(tmp_path / "table.json")]) == 2
    assert "lacks ac_pj, membrane_update_pj" in " ".join(capsys.readouterr().err.split()) and not (tmp_path / "reports").exists()
