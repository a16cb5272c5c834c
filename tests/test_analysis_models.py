"""Model-level analysis: samples from a checkpoint, Grad-CAM, spike figures, weights, operation counts."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib import animation as mpl_animation
from PIL import Image
from torch import nn

from analysis import gradcam, spikes
from analysis.animation import Prerendered, animation_writer, save_animation
from analysis.samples import load_with_samples
from analysis.weights import weight_artifacts, weights_figure
from study.checkpoint import save_checkpoint
from study.config import Hyperparams
from study.errors import UserError
from study.models import common
from study.origin import experiment_data_dir
from study.registry import build_model

STEPS = 4
MODELS = {
    "mnist-cnn": ("mnist", "cnn", Hyperparams()),
    "mnist-scnn": ("mnist", "scnn", Hyperparams(num_steps=STEPS, encoding="rate", threshold=0.5)),  # active when untrained
    "nmnist-scnn": ("nmnist", "scnn", Hyperparams(num_steps=STEPS, population=2)),
    "dvsgesture-slstm": ("dvsgesture", "slstm", Hyperparams(num_steps=STEPS, frame_size=32, hidden=16)),
}
# Grey-level variance (0-255) of a written image: 0 for one colour, about 560 for bare axes and a title.
VARIANCE_FLOOR = 100.0


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict:
    """An untrained, seeded checkpoint of each model, each in its own folder as the export writes them."""
    root = tmp_path_factory.mktemp("checkpoints")
    paths = {}
    for name, (dataset, arch, hp) in MODELS.items():
        torch.manual_seed(0)
        paths[name] = root / name / "best.pth"
        paths[name].parent.mkdir()
        save_checkpoint(paths[name], build_model(dataset, arch, hp), dataset=dataset, arch=arch, hp=hp)
    return paths


@pytest.fixture(scope="module")
def loaded(checkpoints, data_root) -> dict:
    """20 test samples of each model; DVS Gesture one per class (its convolutional LSTM is the slow model)."""
    return {name: load_with_samples(path, 11 if name.startswith("dvs") else 20, data_root) for name, path in checkpoints.items()}


def grey_variance(image: Image.Image) -> float:
    return float(np.asarray(image.convert("L"), dtype=np.float64).var())


def assert_not_blank(path) -> None:
    with Image.open(path) as image:
        frames = getattr(image, "n_frames", 1)
        for frame in {0, frames - 1}:
            image.seek(frame)
            assert grey_variance(image) > VARIANCE_FLOOR, f"{path} frame {frame} looks blank"


def gif_frames(path) -> int:
    with Image.open(path) as image:
        return image.n_frames


# ---- samples ------------------------------------------------------------------------------


def test_samples_are_class_balanced_model_ready_and_sorted_by_class(loaded):
    events = loaded["nmnist-scnn"]
    assert events.inputs.shape == (STEPS, 20, 2, 34, 34) and events.frames.shape == (20, STEPS, 2, 34, 34)
    assert torch.equal(events.labels, torch.arange(10).repeat_interleave(2))
    assert torch.equal(events.inputs, events.frames.transpose(0, 1))
    image = loaded["mnist-cnn"]
    assert image.inputs.shape == (20, 1, 28, 28) and image.frames.shape == (20, 1, 28, 28)
    assert image.class_names[3] == "3 - three" and not image.model.training


def test_the_data_folder_is_found_through_the_experiment(tmp_path, data_root):
    """An export finds its experiment through config.json; a trial checkpoint lies inside it."""
    experiment = tmp_path / "results" / "study-a"
    trial_checkpoint = experiment / "trial_1" / "checkpoint_000002"
    trial_checkpoint.mkdir(parents=True)
    (experiment / "study.json").write_text(json.dumps({"settings": {"data_dir": str(data_root)}}))
    hp = Hyperparams()
    save_checkpoint(trial_checkpoint / "checkpoint.pth", build_model("mnist", "cnn", hp), dataset="mnist", arch="cnn", hp=hp)
    export = tmp_path / "checkpoints" / "study-a"
    export.mkdir(parents=True)
    (export / "best.pth").write_bytes((trial_checkpoint / "checkpoint.pth").read_bytes())
    (export / "config.json").write_text(json.dumps({"trial_checkpoint": str(trial_checkpoint)}))

    assert experiment_data_dir(export / "best.pth") == data_root
    assert experiment_data_dir(trial_checkpoint / "checkpoint.pth") == data_root
    assert experiment_data_dir(tmp_path / "elsewhere.pth") is None
    assert len(load_with_samples(export / "best.pth", 10).labels) == 10  # no data_dir given


def test_missing_data_is_a_clear_error(checkpoints, tmp_path, no_network):
    with pytest.raises(UserError, match="mnist test split is not under"):
        load_with_samples(checkpoints["mnist-cnn"], 10, tmp_path / "empty")


# ---- Grad-CAM -----------------------------------------------------------------------------


def reference_step_maps(model: nn.Module, inputs: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Per-step Grad-CAM by plain autograd, without pytorch-grad-cam: [B, T, h, w], before scaling."""
    consumer, producer = model.explained_spikes.reader, model.explained_spikes.spikes
    fed = []

    def keep(module, args):
        args[0].retain_grad()
        fed.append(args[0])

    handle = getattr(model, consumer).register_forward_pre_hook(keep)
    output = model.run(inputs)
    handle.remove()
    output.scores[torch.arange(len(classes)), classes].sum().backward()
    shape = output.spikes[producer].shape[2:]
    activations = torch.cat([x.detach() for x in fed]).view(-1, *shape)  # [T*B, C', h, w]
    grads = torch.cat([x.grad for x in fed]).view(-1, *shape)
    maps = torch.relu((grads.mean((2, 3), keepdim=True) * activations).sum(1))  # [T*B, h, w]
    return maps.unflatten(0, (inputs.shape[0], -1)).transpose(0, 1)


@pytest.mark.parametrize("name", ["nmnist-scnn", "dvsgesture-slstm"])
def test_spiking_gradcam_covers_every_time_step_in_one_recorded_call(loaded, name, monkeypatch):
    """The maps equal per-step Grad-CAM by autograd even when the consumer runs in several calls."""
    monkeypatch.setattr(common, "CPU_FOLD_SAMPLES", 30)  # the spiking CNN's fc then runs in chunks of steps
    sample = loaded[name]
    model, inputs = sample.model, sample.inputs
    classes = torch.arange(len(sample.labels)) % len(sample.class_names)
    calls = []
    handle = getattr(model, model.explained_spikes.reader).register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        model.run(inputs)
    handle.remove()
    assert len(calls) > 1  # otherwise this test would not test what it says

    summed, per_step = gradcam.spiking_cam(model, inputs, classes)
    reference = reference_step_maps(model, inputs, classes)
    reference = torch.nn.functional.interpolate(reference, size=inputs.shape[-2:], mode="bilinear", align_corners=False)
    reference = reference / reference.flatten(1).max(1).values.clamp_min(1e-12)[:, None, None, None]
    assert per_step.shape == (len(classes), STEPS, *inputs.shape[-2:]) and summed.shape == (len(classes), *inputs.shape[-2:])
    assert np.allclose(per_step, reference.numpy(), atol=1e-4)
    assert per_step[:, 1:].max() > 0  # evidence after the first step: a first-call-only map would miss it


@pytest.mark.parametrize("name", list(MODELS))
def test_gradcam_maps_differ_between_target_classes(loaded, name):
    sample = loaded[name]
    first, second = (torch.full((len(sample.labels),), label) for label in (0, 1))
    if sample.spiking:
        maps = [gradcam.spiking_cam(sample.model, sample.inputs, target)[0] for target in (first, second)]
    else:
        maps = [gradcam.cnn_cam(sample.model, sample.inputs, target) for target in (first, second)]
    assert all(m.min() >= 0 and m.max() <= 1 and m.max() > 0 for m in maps)
    assert np.abs(maps[0] - maps[1]).mean() > 0.01


@pytest.mark.parametrize("name", ["mnist-cnn", "nmnist-scnn", "dvsgesture-slstm"])
def test_gradcam_figures_are_written_and_not_blank(loaded, name, tmp_path):
    artifacts = gradcam.gradcam_artifacts(loaded[name], tmp_path)
    expected = {"mnist-cnn": {"gradcam_grid.png"}, "nmnist-scnn": {"gradcam_grid.png", "gradcam_steps.png", "gradcam_steps.gif"}}
    assert {a.path.name for a in artifacts} == expected.get(name, expected["nmnist-scnn"])
    assert all(a.section == "Grad-CAM" and a.caption and a.path.parent == tmp_path for a in artifacts)
    for artifact in artifacts:
        assert_not_blank(artifact.path)
        if artifact.path.suffix == ".gif":
            assert gif_frames(artifact.path) == STEPS


# ---- spikes, weights, animations ----------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist-scnn", "nmnist-scnn", "dvsgesture-slstm"])
def test_spike_figures_and_the_count_animation_with_one_frame_per_step(loaded, name, tmp_path):
    artifacts = spikes.spike_artifacts(loaded[name], tmp_path)
    names = [a.path.name for a in artifacts]
    assert names == ["input_frames.png", "hidden_raster.png", "output_membrane.png", "output_counts.gif"]
    assert all(a.section == "Spikes" and a.caption for a in artifacts)
    for artifact in artifacts:
        assert_not_blank(artifact.path)
    assert gif_frames(tmp_path / "output_counts.gif") == STEPS


def test_the_raster_shows_every_hidden_spike_and_the_traces_every_output_neuron(loaded):
    sample = loaded["nmnist-scnn"]
    output = sample.output
    raster = spikes.raster_figure(sample, output, 3)
    plotted = [len(ax.collections[0].get_offsets()) for ax in raster.axes]
    assert plotted == [int(output.spikes[layer][:, 3].sum()) for layer in ("lif1", "lif2")] and sum(plotted) > 0
    membrane = spikes.membrane_figure(sample, output, 3)
    assert len(membrane.axes[0].lines) == 10 * 2 + 1  # 10 classes x population 2, and the threshold
    plt.close(raster)
    plt.close(membrane)


def test_a_cnn_has_no_spike_figures(loaded, tmp_path):
    assert spikes.spike_artifacts(loaded["mnist-cnn"], tmp_path) == []
    assert not list(tmp_path.iterdir())


def test_weight_histograms_of_several_models_side_by_side(loaded, tmp_path):
    models = {name: loaded[name].model for name in ("mnist-cnn", "nmnist-scnn", "dvsgesture-slstm")}
    (artifact,) = weight_artifacts(models, tmp_path)
    assert artifact.section == "Weights" and all(name in artifact.caption for name in models)
    assert_not_blank(artifact.path)


def test_the_weight_figure_has_a_column_per_model_and_a_histogram_per_weight_tensor(loaded):
    models = {name: loaded[name].model for name in ("mnist-cnn", "dvsgesture-slstm")}
    figure = weights_figure(models)
    histograms = [ax for ax in figure.axes if ax.axison]
    assert figure.axes[0].get_subplotspec().get_gridspec().ncols == 2
    assert len(histograms) == 3 + 5  # conv, conv, linear; conv-LSTM conv, projection, LSTM input and hidden, linear
    assert [ax.get_title().split("\n")[0] for ax in histograms[:2]] == list(models)  # the first row, model by model
    plt.close(figure)


def test_the_writer_is_ffmpeg_when_available_else_pillow(monkeypatch):
    monkeypatch.setattr(mpl_animation.writers, "is_available", lambda name: name == "ffmpeg")
    writer, suffix = animation_writer(fps=4)
    assert isinstance(writer, mpl_animation.FFMpegWriter) and suffix == ".mp4"
    monkeypatch.setattr(mpl_animation.writers, "is_available", lambda name: False)
    writer, suffix = animation_writer(fps=4)
    assert isinstance(writer, mpl_animation.PillowWriter) and suffix == ".gif"


def _counting_animation(frames: int):
    figure, ax = plt.subplots(figsize=(2, 2))
    (line,) = ax.plot([0, 1], [0, 0])
    ax.set_ylim(0, frames)
    return figure, mpl_animation.FuncAnimation(figure, lambda i: line.set_ydata([i, i]), frames=frames)


def _counting_pictures(frames: int) -> Prerendered:
    return Prerendered([np.full((20, 30, 3), 40 * i, dtype=np.uint8) for i in range(frames)])


@pytest.mark.skipif(not mpl_animation.writers.is_available("ffmpeg"), reason="ffmpeg is not installed")
def test_an_mp4_is_written_where_ffmpeg_is_installed(tmp_path):
    figure, animation = _counting_animation(5)
    for name, movie in [("drawn", animation), ("prerendered", _counting_pictures(5))]:
        path = save_animation(movie, tmp_path / name, fps=5)
        assert path == tmp_path / f"{name}.mp4" and path.stat().st_size > 0
    plt.close(figure)


def test_without_ffmpeg_a_gif_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(mpl_animation.writers, "is_available", lambda name: False)
    figure, animation = _counting_animation(5)
    assert save_animation(animation, tmp_path / "drawn.v1", fps=5) == tmp_path / "drawn.v1.gif"
    plt.close(figure)
    assert save_animation(_counting_pictures(5), tmp_path / "prerendered", fps=5) == tmp_path / "prerendered.gif"
    assert gif_frames(tmp_path / "drawn.v1.gif") == gif_frames(tmp_path / "prerendered.gif") == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drawn.v1.gif", "prerendered.gif"]  # no temporary file left


# ---- command lines ------------------------------------------------------------------------


@pytest.mark.parametrize("command", [gradcam.main, spikes.main])
def test_commands_refuse_unusable_checkpoints_with_exit_status_2(command, tmp_path, capsys):
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    hp = Hyperparams(num_steps=STEPS)
    save_checkpoint(tmp_path / "wrong.pth", build_model("nmnist", "cnn", hp), dataset="nmnist", arch="scnn", hp=hp)
    for file, message in [("missing.pth", "No checkpoint file"), ("notes.pth", "not a snn-study checkpoint"), ("wrong.pth", "do not fit a scnn")]:
        assert command([str(tmp_path / file), "--out", str(tmp_path / "out")]) == 2
        assert message in capsys.readouterr().err.replace("\n", " ")
    assert not (tmp_path / "out").exists()


def test_spikes_command_explains_that_a_cnn_does_not_spike(checkpoints, data_root, capsys):
    assert spikes.main([str(checkpoints["mnist-cnn"]), "--data-dir", str(data_root), "--samples", "10"]) == 2
    assert "does not spike" in capsys.readouterr().err


def checkpoints_arch(model: str) -> str:
    return MODELS[model][1]


@pytest.mark.parametrize("command, folder, model", [(gradcam.main, "gradcam", "mnist-cnn"), (spikes.main, "spikes", "nmnist-scnn")])
def test_commands_write_their_figures_under_reports_by_default(command, folder, model, checkpoints, data_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert command([str(checkpoints[model]), "--data-dir", str(data_root), "--samples", "4"]) == 0
    printed = capsys.readouterr().out.split()
    out = tmp_path / "reports" / model / folder
    assert printed and all((tmp_path / path).parent == out and (tmp_path / path).is_file() for path in printed)
    exported = tmp_path / "checkpoints" / "study" / checkpoints_arch(model) / "best.pth"  # an exported one: checkpoints/<study>/<arch>/
    exported.parent.mkdir(parents=True)
    exported.write_bytes(checkpoints[model].read_bytes())
    assert command([str(exported), "--data-dir", str(data_root), "--samples", "4"]) == 0
    assert all((tmp_path / path).parent == tmp_path / "reports" / "study" / checkpoints_arch(model) / folder for path in capsys.readouterr().out.split())
