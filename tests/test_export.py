"""Export: spiking CNNs to NIR and the CNN to ONNX, each read back by another runtime and compared with the model."""

from __future__ import annotations

import re
from pathlib import Path

import nir
import numpy as np
import onnx
import pytest
import torch

from analysis.exports import export_table
from study.checkpoint import save_checkpoint
from study.config import Hyperparams
from study.export import nir_reader
from study.export.__main__ import main
from study.export.onnx_model import run_onnx
from study.models.calibration import calibrate
from study.registry import build_model, model_input_shape


def trained_looking(dataset: str, arch: str, hp: Hyperparams, seed: int = 0) -> torch.nn.Module:
    """A model as a trial leaves it: BatchNorm statistics moved, calibrated on a batch, learned beta and threshold moved off their start."""
    torch.manual_seed(seed)
    model = build_model(dataset, arch, hp)
    shape = model_input_shape(dataset, arch, hp)
    if not model.spiking:
        model.train()
        with torch.no_grad():
            model(torch.rand(16, *shape) * 3)
        return model.eval()
    batch = torch.randint(0, 3, (hp.num_steps, 6, *shape)).float()  # [T, B, C, H, W] event counts
    model.train()
    with torch.no_grad():
        for index, neuron in enumerate([*model.neurons, model.output_neurons]):
            if hp.learn_beta:
                neuron.beta.fill_(0.6 + 0.05 * index)
            if hp.learn_threshold:
                neuron.threshold.fill_(0.9 - 0.05 * index)
        for norm in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            norm.momentum = None  # running statistics: the plain average of the batches seen
        model.run(batch)  # BatchNorm's running statistics move off 0 and 1, to the data's
        calibrate(model, batch, events=True)
    return model.eval()


def checkpoint(tmp_path: Path, model, dataset: str, arch: str, hp: Hyperparams) -> Path:
    path = tmp_path / "checkpoints" / arch / "best.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, model, dataset=dataset, arch=arch, hp=hp)
    return path


SPIKING = {
    "batch-norm, learned beta and threshold": Hyperparams(
        num_steps=8, pooling="avg", batch_norm=True, learn_beta=True, learn_threshold=True, kernel_size=3
    ),
    "population of 3, three blocks": Hyperparams(num_steps=6, pooling="avg", blocks=3, population=3, beta=0.9),
}


@pytest.mark.parametrize("name", SPIKING)
def test_nir_graph_read_back_gives_the_models_output_spikes(tmp_path, capsys, name):
    hp = SPIKING[name]
    model = trained_looking("nmnist", "scnn", hp)
    path = checkpoint(tmp_path, model, "nmnist", "scnn", hp)
    assert main([str(path)]) == 0
    exported = path.with_suffix(".nir")
    said = capsys.readouterr().out
    assert f"{exported}: NIR" in said and "--fix reset=zero --fix readout=spikes exports as LIF nodes" in said

    graph = nir.read(exported)
    kinds = {type(node).__name__ for node in graph.nodes.values()}
    assert kinds == {"Input", "Conv2d", "AvgPool2d", "LI", "Threshold", "Scale", "Flatten", "Affine", "Output"}  # BatchNorm folded
    assert graph.metadata["num_steps"] == hp.num_steps and graph.metadata["dt"] == pytest.approx(1e-4)
    assert list(graph.metadata["input_shape"]) == [2, 34, 34]
    # the trained beta and threshold, not the proposed ones
    beta = 1 - graph.metadata["dt"] / graph.nodes["lif1_membrane"].tau
    np.testing.assert_allclose(beta, float(model.neurons[0].beta.detach()), rtol=1e-6)
    np.testing.assert_array_equal(graph.nodes["lif2_fire"].threshold, float(model.neurons[1].threshold.detach()))

    # fresh input, unlike the export's own check: event counts, so the folded input scale matters
    x = torch.randint(0, 3, (hp.num_steps, 3, 2, 34, 34), generator=torch.Generator().manual_seed(7)).float()
    with torch.no_grad():
        expected = model.run(x)
    spikes = nir_reader.run_over_time(nir_reader.to_torch(graph), x)  # [T, B, classes x population]
    assert expected.spikes["out"].sum() > 10
    assert torch.equal(spikes, expected.spikes["out"])
    membrane = nir_reader.run_over_time(nir_reader.to_torch(nir_reader.with_output_from(graph, "out_membrane")), x)
    torch.testing.assert_close(membrane, expected.membrane, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("learned", [False, True])
def test_a_network_trained_with_reset_to_zero_becomes_lif_nodes_that_snntorch_reads(tmp_path, capsys, learned):
    """NIR's LIF is that network exactly: snnTorch's own importer, as a user runs it, gives the model's output spikes."""
    hp = Hyperparams(num_steps=8, pooling="avg", batch_norm=True, reset="zero", population=2, learn_beta=learned, learn_threshold=learned)
    model = trained_looking("nmnist", "scnn", hp)
    path = checkpoint(tmp_path, model, "nmnist", "scnn", hp)
    assert main([str(path)]) == 0
    assert "read by snnTorch's import_from_nir" in capsys.readouterr().out

    graph = nir.read(path.with_suffix(".nir"))
    assert {type(node).__name__ for node in graph.nodes.values()} == {"Input", "Conv2d", "AvgPool2d", "LIF", "Flatten", "Affine", "Output"}
    assert nir_reader.snntorch_reads(graph)
    np.testing.assert_allclose(1 - graph.metadata["dt"] / graph.nodes["lif2"].tau, float(model.neurons[1].beta.detach()), rtol=1e-6)
    np.testing.assert_array_equal(graph.nodes["out"].v_reset, 0.0)

    x = torch.randint(0, 3, (hp.num_steps, 3, 2, 34, 34), generator=torch.Generator().manual_seed(7)).float()
    with torch.no_grad():
        expected = model.run(x).spikes["out"]
    assert expected.sum() > 10
    assert torch.equal(nir_reader.run_with_snntorch(graph, x), expected)
    assert torch.equal(nir_reader.run_over_time(nir_reader.to_torch(graph), x), expected)


def test_nir_membrane_readout_is_a_leaky_integrator_read_back_exactly(tmp_path):
    hp = Hyperparams(num_steps=8, pooling="avg", readout="membrane_mean", population=2)
    model = trained_looking("mnist", "scnn", hp)
    path = checkpoint(tmp_path, model, "mnist", "scnn", hp)
    assert main([str(path), "--out", str(tmp_path / "nir")]) == 0
    graph = nir.read(tmp_path / "nir" / "best.nir")
    assert "out_fire" not in graph.nodes and ("out_membrane", "output") in graph.edges
    assert graph.metadata["readout"] == "membrane_mean"
    np.testing.assert_array_equal(graph.metadata["output_class"], np.repeat(np.arange(10), 2))
    images = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    x = images.expand(hp.num_steps, *images.shape)  # direct current: the same image every step
    with torch.no_grad():
        expected = model.run(x)
    membrane = nir_reader.run_over_time(nir_reader.to_torch(graph), x)
    torch.testing.assert_close(membrane, expected.membrane, rtol=1e-4, atol=1e-5)
    scores = membrane.mean(0).unflatten(-1, (10, 2)).sum(-1)  # the readout the metadata describes
    assert torch.equal(scores.argmax(1), expected.scores.argmax(1))


def test_onnx_model_run_by_onnxruntime_gives_the_models_logits(tmp_path, capsys):
    hp = Hyperparams(batch_norm=True, dropout=0.3, time_bins=2, frame_size=32, kernel_size=3)
    model = trained_looking("dvsgesture", "cnn", hp)
    path = checkpoint(tmp_path, model, "dvsgesture", "cnn", hp)
    assert main([str(path)]) == 0
    exported = path.with_suffix(".onnx")
    assert f"{exported}: ONNX" in capsys.readouterr().out
    proto = onnx.load(exported)
    properties = {p.key: p.value for p in proto.metadata_props}
    assert properties["dataset"] == "dvsgesture" and "log1p" in properties["input"]
    assert "BatchNormalization" not in {node.op_type for node in proto.graph.node}

    x = torch.rand(7, 4, 32, 32, generator=torch.Generator().manual_seed(5)) * 2  # another batch size than the check's
    with torch.no_grad():
        expected = model(x).numpy()
    logits = run_onnx(exported.read_bytes(), x.numpy())
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "arch, hp, words",
    [
        ("scnn", Hyperparams(num_steps=4, pooling="max"), ["blocks.0.pool", "max pooling", "pooling=avg"]),
        ("slstm", Hyperparams(num_steps=4), ["conv_lstm", "LSTM", "--arch scnn"]),
    ],
    ids=["max-pooling", "spiking-lstm"],
)
def test_what_nir_cannot_express_stops_with_the_layer_and_the_option(tmp_path, capsys, arch, hp, words):
    path = checkpoint(tmp_path, build_model("nmnist", arch, hp), "nmnist", arch, hp)
    assert main([str(path)]) == 2
    message = " ".join(capsys.readouterr().err.split())
    assert all(word in message for word in words), message
    assert sorted(p.name for p in path.parent.iterdir()) == ["best.pth"]


def test_bad_input_stops_before_anything_is_written(tmp_path, capsys):
    not_ours = tmp_path / "other.pth"
    torch.save({"state_dict": {}}, not_ours)
    assert main([str(not_ours)]) == 2
    assert "not a snn-study checkpoint" in " ".join(capsys.readouterr().err.split())

    hp = Hyperparams(num_steps=4, pooling="avg")
    path = checkpoint(tmp_path, build_model("nmnist", "scnn", hp), "nmnist", "scnn", hp)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main([str(path), "--out", str(blocker / "exports")]) == 2
    assert "a-file, which is a file; it must be a folder" in " ".join(capsys.readouterr().err.split())
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(["a-file", "other.pth", "checkpoints", "scnn", "best.pth"])


def test_a_graph_that_computes_otherwise_fails_the_check_and_is_not_written(tmp_path, capsys, monkeypatch):
    """The export's own round trip is not a formality: a graph with one threshold off is caught."""
    import study.export.exporter as exporter

    real = exporter.nir_graph

    def off_by_a_tenth(*args):
        graph = real(*args)
        graph.nodes["lif1_fire"].threshold = graph.nodes["lif1_fire"].threshold * 1.1
        return graph

    monkeypatch.setattr(exporter, "nir_graph", off_by_a_tenth)
    hp = SPIKING["population of 3, three blocks"]
    path = checkpoint(tmp_path, trained_looking("nmnist", "scnn", hp), "nmnist", "scnn", hp)
    assert main([str(path), "--out", str(tmp_path / "new" / "exports")]) == 1
    assert "nothing was written: the NIR graph read back from best.nir differs" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints"]  # no file, not even the folders made for it


def test_report_table_links_exports_or_says_how_to_make_them(tmp_path):
    hp = Hyperparams()
    exported = checkpoint(tmp_path / "a", build_model("mnist", "cnn", hp), "mnist", "cnn", hp)
    assert main([str(exported)]) == 0
    missing = checkpoint(tmp_path / "b", build_model("mnist", "cnn", hp), "mnist", "cnn", hp)
    table = export_table([("mnist cnn", exported), ("other cnn", missing)], tmp_path / "report")
    assert table.rows == [
        ["mnist cnn", "ONNX", "../a/checkpoints/cnn/best.onnx"],
        ["other cnn", "not exported", f"python -m study.export {missing}"],
    ]


def test_report_table_gives_the_exports_reason_for_a_model_it_refuses_not_a_command_that_fails(tmp_path, capsys):
    """A spiking LSTM or a max-pooled spiking CNN: the row holds the export's own refusal; an exportable spiking
    CNN's row holds the command, and that command works."""
    models = {
        "max-pooled scnn": ("scnn", Hyperparams(num_steps=4, pooling="max")),
        "slstm": ("slstm", Hyperparams(num_steps=4, hidden=16)),
        "avg-pooled scnn": ("scnn", Hyperparams(num_steps=4, pooling="avg")),
    }
    paths = {title: checkpoint(tmp_path / title.replace(" ", "-"), build_model("nmnist", arch, hp), "nmnist", arch, hp)
             for title, (arch, hp) in models.items()}
    rows = {row[0]: row[1:] for row in export_table(list(paths.items()), tmp_path / "report").rows}
    for title in ("max-pooled scnn", "slstm"):
        assert main([str(paths[title])]) == 2  # what the command would have done
        refusal = " ".join(capsys.readouterr().err.split()).removeprefix("error: ")
        assert rows[title] == ["cannot be exported", refusal]
    assert "NIR has no max pooling" in rows["max-pooled scnn"][1] and "NIR has no LSTM cells" in rows["slstm"][1]
    assert rows["avg-pooled scnn"] == ["not exported", f"python -m study.export {paths['avg-pooled scnn']}"]
    assert main([str(paths["avg-pooled scnn"])]) == 0


# ---------------------------------------------------------------- the export's own check compares spikes that exist

QUIET = {reset: Hyperparams(num_steps=8, pooling="avg", blocks=2, population=2, reset=reset) for reset in ("subtract", "zero")}


def silenced(hp: Hyperparams) -> torch.nn.Module:
    """A network whose output layer can never fire (threshold 1e6) while its hidden layers do: an untrained
    DVS Gesture network behaved so, and its export once said 'output spikes equal the model's (0 spikes)'."""
    model = trained_looking("nmnist", "scnn", hp)
    with torch.no_grad():
        model.output_neurons.threshold.fill_(1e6)
    return model


@pytest.mark.parametrize("reset", QUIET)
def test_a_quiet_network_is_checked_on_a_scaled_input_on_which_its_outputs_fire(tmp_path, capsys, reset):
    """Silent on the plain check input, firing when it is scaled up: the check compares real output spikes."""
    from study.export import exporter
    from study.export.nir_graph import folded_copy

    hp = QUIET[reset]
    model = trained_looking("nmnist", "scnn", hp)
    with torch.no_grad():
        model.input_scale.mul_(0.1)  # a tenth of the calibrated input: no output spike on the plain check input
    with torch.no_grad():
        plain = folded_copy(model).run(exporter._check_input((hp.num_steps, exporter.CHECK_BATCH, 2, 34, 34)))
    assert plain.spikes["out"].sum() == 0  # what the check used to compare: zero spikes against zero spikes
    path = checkpoint(tmp_path, model, "nmnist", "scnn", hp)
    assert main([str(path)]) == 0
    said = capsys.readouterr().out
    compared = re.search(r"its output spikes equal the model's \((\d+) spikes; read back( and read by snnTorch's import_from_nir)?\)", said)
    assert compared and int(compared.group(1)) > 0, said
    assert bool(compared.group(2)) == (reset == "zero")  # snnTorch's importer reads the LIF graph, and it fired too
    assert re.search(r"scaled by (\d+), the first gain at which the output layer fires", said) and "no output spike" not in said


@pytest.mark.parametrize("reset", QUIET)
def test_an_export_whose_outputs_never_fire_does_not_claim_an_output_spike_comparison(tmp_path, capsys, reset):
    hp = QUIET[reset]
    model = silenced(hp)
    path = checkpoint(tmp_path, model, "nmnist", "scnn", hp)
    assert main([str(path)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "output spikes equal" not in said and "(0 spikes" not in said
    assert "its output layer emitted no spike on any check input (random inputs scaled by 1 to 64), so no output spike was compared" in said
    hidden = re.search(r"the hidden layers' spikes equal the model's \(lif1 (\d+), lif2 (\d+) spikes\)", said)
    assert hidden and min(int(count) for count in hidden.groups()) > 0, said  # a comparison of spikes that exist
    assert "the output membrane equals the model's to float rounding" in said
    assert ("snnTorch's import_from_nir emits no output spike either" in said) == (reset == "zero")

    # what the check says it compared holds on a fresh input too: the graph's lif2 spikes and output membrane
    graph = nir.read(path.with_suffix(".nir"))
    x = torch.randint(0, 3, (hp.num_steps, 3, 2, 34, 34), generator=torch.Generator().manual_seed(7)).float()
    with torch.no_grad():
        expected = model.run(x)
    lif2 = "lif2_fire" if reset == "subtract" else "lif2"
    spikes = nir_reader.run_over_time(nir_reader.to_torch(nir_reader.with_output_from(graph, lif2)), x)
    assert expected.spikes["lif2"].sum() > 0 and torch.equal(spikes, expected.spikes["lif2"])
    membrane = nir_reader.run_over_time(nir_reader.to_torch(nir_reader.with_membrane_output(graph, "out_membrane" if reset == "subtract" else "out")), x)
    torch.testing.assert_close(membrane, expected.membrane, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reset", QUIET)
def test_the_check_of_a_silent_output_still_catches_a_hidden_layer_that_computes_otherwise(tmp_path, capsys, monkeypatch, reset):
    import study.export.exporter as exporter

    real = exporter.nir_graph

    def off_by_a_tenth(*args):
        graph = real(*args)
        node = graph.nodes["lif2_fire" if reset == "subtract" else "lif2"]
        if reset == "subtract":
            node.threshold = node.threshold * 1.1
        else:
            node.v_threshold = node.v_threshold * 1.1
        return graph

    monkeypatch.setattr(exporter, "nir_graph", off_by_a_tenth)
    hp = QUIET[reset]
    path = checkpoint(tmp_path, silenced(hp), "nmnist", "scnn", hp)
    assert main([str(path)]) == 1
    error = capsys.readouterr().err
    assert re.search(r"nothing was written: the NIR graph read back from best.nir differs from the model in \d+ of \d+ layer lif2's spikes", error), error
    assert sorted(p.name for p in path.parent.iterdir()) == ["best.pth"]
