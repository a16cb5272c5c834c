"""Spiking networks start in their working range, read out as asked, and say when they cannot learn."""

from __future__ import annotations

import pytest
import torch

from study.checkpoint import load_model, save_checkpoint
from study.config import Hyperparams, StudySettings
from study.errors import UserError
from study.loop import firing_problem
from study.models import OUTPUT_SPIKES, common
from study.models.calibration import HIDDEN_RATE, OUTPUT_RATE, TOLERANCE, calibrate
from study.registry import DATASETS, build_model


def event_batch(dataset: str, hp: Hyperparams, counts: float, batch: int = 8) -> torch.Tensor:
    shape = DATASETS[dataset].source.input_shape(hp.frame_size)
    return torch.poisson(torch.full((hp.num_steps, batch, *shape), counts))  # [T, B, C, H, W] event counts


def within(rate: float, target: float) -> bool:
    return target / TOLERANCE <= rate <= target * TOLERANCE


# Proposals that leave a plainly initialised network silent or saturated, on inputs of very different scale.
PROPOSALS = [
    ("nmnist", Hyperparams(num_steps=10, beta=0.5, threshold=2.0), 0.05),  # weak input, high threshold, fast decay
    ("nmnist", Hyperparams(num_steps=30, beta=0.99, threshold=0.5, blocks=3, batch_norm=True), 0.3),
    ("dvsgesture", Hyperparams(num_steps=15, frame_size=32, beta=0.9, threshold=1.0, width=2.0, kernel_size=3), 40.0),  # dense counts
]


@pytest.mark.parametrize("dataset, hp, counts", PROPOSALS)
def test_calibration_puts_every_layer_at_its_target_rate_whatever_was_proposed(dataset, hp, counts):
    torch.manual_seed(0)
    model = build_model(dataset, "scnn", hp)
    batch = event_batch(dataset, hp, counts)
    with torch.no_grad():
        before = model.run(batch).spike_counts()
    calibration = calibrate(model, batch, events=True)
    with torch.no_grad():
        after = {name: spikes / updates for name, (spikes, updates) in model.run(batch).spike_counts().items()}
    assert any(spikes == 0 or spikes / updates > 0.5 for spikes, updates in before.values())  # it needed calibrating
    for name, rate in after.items():
        assert within(rate, OUTPUT_RATE if name == OUTPUT_SPIKES else HIDDEN_RATE), (name, rate, calibration.describe())
    nonzero = batch[batch != 0] * float(model.input_scale)
    assert nonzero.mean() == pytest.approx(1.0, rel=1e-4)  # event counts scaled so that a nonzero count is about 1


def test_calibrated_spiking_lstm_layers_fire_at_the_target_rate():
    torch.manual_seed(0)
    hp = Hyperparams(num_steps=8, frame_size=32, hidden=32, lstm_threshold=0.9, readout="membrane_mean")  # o*tanh(c) < 1: never reached
    model = build_model("dvsgesture", "slstm", hp)
    batch = event_batch("dvsgesture", hp, 5.0, batch=4)
    with torch.no_grad():
        assert model.run(batch).spikes["lstm"].sum() == 0
    calibrate(model, batch, events=True)
    with torch.no_grad():
        output = model.run(batch)
    for name in ("conv_lstm", "lstm"):
        assert within(float(output.spikes[name].mean()), HIDDEN_RATE), name
    assert OUTPUT_SPIKES not in output.spikes  # a membrane readout does not fire


def test_calibration_keeps_batchnorm_statistics_and_travels_with_the_checkpoint(tmp_path):
    torch.manual_seed(0)
    hp = Hyperparams(num_steps=6, batch_norm=True)
    model = build_model("nmnist", "scnn", hp)
    batch = event_batch("nmnist", hp, 0.2)
    norm = model.blocks[0].norm
    calibrate(model, batch, events=True)
    assert torch.equal(norm.running_mean, torch.zeros_like(norm.running_mean)) and int(norm.num_batches_tracked) == 0
    assert model.training  # the mode it had
    save_checkpoint(tmp_path / "c.pth", model, dataset="nmnist", arch="scnn", hp=hp)
    loaded, _ = load_model(tmp_path / "c.pth")
    model.eval()
    assert float(loaded.input_scale) == float(model.input_scale) != 1.0
    with torch.no_grad():
        assert torch.equal(loaded.run(batch).scores, model.run(batch).scores)


def test_static_images_keep_their_scale_and_rate_coded_spikes_stay_binary():
    torch.manual_seed(0)
    hp = Hyperparams(num_steps=6, encoding="rate")
    model = build_model("mnist", "scnn", hp)
    spikes = (torch.rand(6, 4, 1, 28, 28) < 0.3).float()
    calibrate(model, spikes, events=False)
    assert float(model.input_scale) == 1.0
    assert torch.equal(model.scale_input(spikes), spikes)


@pytest.mark.parametrize("readout", ["membrane_mean", "membrane_max"])
def test_membrane_readouts_integrate_without_firing(readout):
    torch.manual_seed(0)
    hp = Hyperparams(num_steps=5, population=2, readout=readout, beta=0.7)
    model = build_model("nmnist", "scnn", hp).eval()
    x = (torch.rand(5, 3, 2, 34, 34) < 0.3).float()
    with torch.no_grad():
        output = model.run(x)
        current = common.fold_time(model.classifier, output.spikes["lif2"])  # [T, B, 20]
    expected, membrane = [], torch.zeros_like(current[0])
    for step in current:  # no threshold, no reset
        membrane = 0.7 * membrane + step
        expected.append(membrane)
    expected = torch.stack(expected)
    torch.testing.assert_close(output.membrane, expected)
    per_time = expected.mean(0) if readout == "membrane_mean" else expected.max(0).values
    torch.testing.assert_close(output.scores, per_time.unflatten(-1, (10, 2)).sum(-1))
    assert OUTPUT_SPIKES not in output.spikes
    running = model.output_layer.running_scores(output)
    assert running.shape == (5, 3, 10) and torch.allclose(running[-1], output.scores)


def test_spike_readout_running_scores_are_the_counts_so_far():
    torch.manual_seed(0)
    model = build_model("nmnist", "scnn", Hyperparams(num_steps=5, threshold=0.3)).eval()
    with torch.no_grad():
        output = model.run((torch.rand(5, 2, 2, 34, 34) < 0.3).float())
    running = model.output_layer.running_scores(output)
    assert torch.equal(running[-1], output.scores) and torch.equal(running[0], output.spikes[OUTPUT_SPIKES][0])


def test_batchnorm_over_time_does_not_depend_on_the_cpu_chunking(monkeypatch):
    torch.manual_seed(0)
    model = build_model("nmnist", "scnn", Hyperparams(num_steps=8, batch_norm=True))
    x = (torch.rand(8, 4, 2, 34, 34) < 0.3).float()
    whole = model.run(x).scores
    monkeypatch.setattr(common, "CPU_FOLD_SAMPLES", 4)  # one time step per chunk
    torch.testing.assert_close(model.run(x).scores, whole)


def test_capacity_sets_depth_and_width_and_refuses_a_depth_that_does_not_fit():
    model = build_model("nmnist", "scnn", Hyperparams(blocks=3, width=2.0, kernel_size=3, pooling="avg"))
    assert [block.conv.out_channels for block in model.blocks] == [24, 64, 128]
    assert all(isinstance(block.pool, torch.nn.AvgPool2d) for block in model.blocks)
    seed = build_model("mnist", "cnn", Hyperparams())
    assert [block[0].conv.out_channels for block in seed.features] == [12, 32]  # the seed's network by default
    with pytest.raises(UserError, match="blocks=5 do not fit a 28x28 input.*at most 4"):
        build_model("mnist", "cnn", Hyperparams(blocks=5))
    with pytest.raises(UserError, match="Unknown pooling 'mean'. Valid poolings: avg, max"):
        build_model("mnist", "cnn", Hyperparams(pooling="mean"))


def test_firing_problems():
    assert firing_problem({"lif1": 0.1, "out": 0.2}) is None
    assert firing_problem({"lif1": 0.1, "out": 0.0}) == "silent"
    assert firing_problem({"lif1": 0.97, "out": 0.2}) == "saturated"
    assert firing_problem({}) is None  # a network that does not spike has nothing to check


def test_a_trial_at_chance_after_two_epochs_is_stalled_when_that_saves_epochs():
    from study.loop import EpochResult, epoch_metrics

    train = EpochResult(2.0, 0.1, {"lif1": 0.1}, 0.1, 900)
    at_chance, learning = EpochResult(2.3, 0.11, {"lif1": 0.1}, 0.1, 300), EpochResult(1.5, 0.15, {"lif1": 0.1}, 0.1, 300)
    assert epoch_metrics(2, train, at_chance, 1.0, classes=10, epochs_left=3).get("stalled")  # 33 of 300 right: chance
    assert not epoch_metrics(2, train, learning, 1.0, classes=10, epochs_left=3).get("stalled")  # 45 of 300: above it
    assert not epoch_metrics(1, train, at_chance, 1.0, classes=10, epochs_left=4).get("stalled")  # too early
    assert not epoch_metrics(2, train, at_chance, 1.0, classes=10, epochs_left=0).get("stalled")  # nothing left to save
    tiny = EpochResult(2.3, 0.1, {"lif1": 0.1}, 0.1, 20)
    assert not epoch_metrics(2, train, tiny, 1.0, classes=10, epochs_left=3).get("stalled")  # 2 a class cannot tell


@pytest.mark.parametrize("calibrated, stops", [(False, True), (True, False)])
def test_a_saturated_trial_stops_after_its_first_epoch_unless_calibration_calms_it(data_root, monkeypatch, calibrated, stops):
    """The counterpart of the silent trial (tests/test_training.py): every neuron driven far above its threshold
    (each layer's bias at +10, as weights that drifted leave it) fires at every step. Over its first epoch
    that is saturation: the trial says so and stops, and is marked saturated. Calibration scales each layer
    back to its working rate, and the same network trains on."""
    from types import SimpleNamespace

    from ray import tune

    import study.trainable
    from study.loop import SATURATED_RATE
    from study.outcome import trial_status
    from study.trainable import train_trial

    def overdriven(dataset, arch, hp):
        model = build_model(dataset, arch, hp)
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                    module.bias.fill_(10.0)
        return model

    reports = []
    monkeypatch.setattr(study.trainable, "build_model", overdriven)
    monkeypatch.setattr(tune, "report", lambda metrics, checkpoint: reports.append(metrics))
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    settings = StudySettings("nmnist", "scnn", data_root, max_epochs=3, train_limit=40, val_limit=20, calibrate=calibrated)
    train_trial({"num_steps": 5, "batch_size": 16, "readout": "spikes"}, settings)
    layers = ("lif1", "lif2", OUTPUT_SPIKES)
    if stops:
        assert [m["epoch"] for m in reports] == [1] and reports[0]["saturated"] is True and "silent" not in reports[0]
        assert all(reports[0][f"spike_rate_{layer}"] >= SATURATED_RATE for layer in layers), reports[0]
        assert trial_status(SimpleNamespace(metrics=reports[-1], error=None), max_epochs=3) == "saturated"
    else:
        assert [m["epoch"] for m in reports] == [1, 2, 3] and not any(m.get("saturated") or m.get("silent") for m in reports)
        assert all(reports[0][f"spike_rate_{layer}"] < SATURATED_RATE for layer in layers), reports[0]
