"""One checkpoint format: rebuilds its model without Ray, loads safely, says clearly when it cannot."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys

import pytest
import torch

from study.checkpoint import load_model, read_checkpoint, save_checkpoint
from study.config import Hyperparams
from study.errors import UserError
from study.registry import build_model


def test_checkpoint_rebuilds_the_same_model(tmp_path):
    hp = Hyperparams(num_steps=4, population=5, learn_beta=True)
    model = build_model("nmnist", "scnn", hp).eval()
    optimizer = torch.optim.Adam(model.parameters())
    save_checkpoint(tmp_path / "c.pth", model, dataset="nmnist", arch="scnn", hp=hp, optimizer=optimizer.state_dict(), epoch=3)
    loaded, payload = load_model(tmp_path / "c.pth")
    x = (torch.rand(4, 2, 2, 34, 34) < 0.3).float()
    assert torch.equal(model.run(x).membrane, loaded.run(x).membrane)
    assert payload["epoch"] == 3 and Hyperparams.from_dict(payload["hyperparams"]) == hp
    assert not list(tmp_path.glob("*.partial-*"))


def test_weights_of_another_architecture_are_refused(tmp_path):
    model = build_model("nmnist", "cnn", Hyperparams())
    save_checkpoint(tmp_path / "c.pth", model, dataset="nmnist", arch="cnn", hp=Hyperparams())
    payload = torch.load(tmp_path / "c.pth", weights_only=True)
    payload["arch"] = "scnn"  # claims to be a spiking CNN
    torch.save(payload, tmp_path / "c.pth")
    with pytest.raises(UserError, match="do not fit a scnn"):
        load_model(tmp_path / "c.pth")


def test_older_layout_and_foreign_files_are_refused(tmp_path):
    torch.save({"version": 0, "dataset": "mnist", "arch": "cnn", "hyperparams": {}, "model": {}}, tmp_path / "old.pth")
    with pytest.raises(UserError, match="layout version 0"):
        read_checkpoint(tmp_path / "old.pth")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pth")
    with pytest.raises(UserError, match="not a snn-study checkpoint"):
        read_checkpoint(tmp_path / "foreign.pth")
    with pytest.raises(UserError, match="No checkpoint file"):
        read_checkpoint(tmp_path / "missing.pth")


def test_a_folder_is_called_a_folder_and_its_checkpoints_named(tmp_path):
    folder = tmp_path / "scnn"
    folder.mkdir()
    with pytest.raises(UserError) as empty:
        read_checkpoint(folder)
    assert str(empty.value) == f"{folder} is a folder, not a checkpoint file: it holds no .pth file."
    hp = Hyperparams()
    save_checkpoint(folder / "best.pth", build_model("mnist", "cnn", hp), dataset="mnist", arch="cnn", hp=hp)
    (folder / "best.onnx").write_bytes(b"")  # not a checkpoint: not named
    with pytest.raises(UserError) as holding:
        load_model(folder)
    assert str(holding.value) == f"{folder} is a folder, not a checkpoint file: give a .pth file in it (best.pth)."


class Exploit:
    def __reduce__(self):
        return (exec, ("open(__import__('os').environ['EXPLOIT_MARK'], 'w').write('ran')",))


def test_a_malicious_pickle_does_not_run(tmp_path, monkeypatch):
    mark = tmp_path / "exploit-ran"
    monkeypatch.setenv("EXPLOIT_MARK", str(mark))
    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"version": 1, "payload": Exploit()}, protocol=2))
    with pytest.raises(UserError):
        read_checkpoint(tmp_path / "evil.pth")
    assert not mark.exists()
    pickle.loads((tmp_path / "evil.pth").read_bytes())  # unpickled the unsafe way, the file really is an exploit
    assert mark.read_text() == "ran"


def test_evaluate_command_tests_a_checkpoint_and_refuses_a_broken_one(data_root, tmp_path, capsys):
    from study.evaluate import main

    hp = Hyperparams(num_steps=4)
    model = build_model("nmnist", "scnn", hp)
    save_checkpoint(tmp_path / "good.pth", model, dataset="nmnist", arch="scnn", hp=hp)
    assert main([str(tmp_path / "good.pth"), "--data-dir", str(data_root)]) == 0
    printed = capsys.readouterr().out
    assert "scnn on nmnist: test_acc" in printed and "over 50 test samples" in printed

    save_checkpoint(tmp_path / "wrong.pth", build_model("nmnist", "cnn", hp), dataset="nmnist", arch="scnn", hp=hp)
    assert main([str(tmp_path / "wrong.pth"), "--data-dir", str(data_root)]) == 2
    error = capsys.readouterr().err.replace("\n", " ")
    assert re.search(r"do not fit a scnn for nmnist: \d+ missing, \d+ unexpected and 0 mis-shaped tensors", error)


def test_evaluate_uses_the_data_and_test_subset_of_the_study_that_wrote_the_checkpoint(data_root, tmp_path, monkeypatch, capsys, no_network):
    """Run from elsewhere, it neither falls back to ./data nor tests more samples than the study's test_acc is over."""
    from study.evaluate import main

    trial_checkpoint = tmp_path / "results" / "study-a" / "trial_1" / "checkpoint_000002"
    trial_checkpoint.mkdir(parents=True)
    (tmp_path / "results" / "study-a" / "study.json").write_text(json.dumps({"settings": {"data_dir": str(data_root), "test_limit": 20}}))
    hp = Hyperparams(num_steps=4)
    save_checkpoint(trial_checkpoint / "checkpoint.pth", build_model("nmnist", "scnn", hp), dataset="nmnist", arch="scnn", hp=hp)
    monkeypatch.chdir(tmp_path)
    assert main([str(trial_checkpoint / "checkpoint.pth")]) == 0
    assert f"over 20 test samples from {data_root}" in capsys.readouterr().out
    assert not (tmp_path / "data").exists()
    assert main([str(trial_checkpoint / "checkpoint.pth"), "--test-limit", "30"]) == 0  # the flags still win
    assert "over 30 test samples" in capsys.readouterr().out


def test_evaluate_reports_a_test_loss_that_is_not_finite(data_root, tmp_path, capsys):
    from study.evaluate import main

    hp = Hyperparams()
    model = build_model("mnist", "cnn", hp)
    with torch.no_grad():
        model.classifier[-1].bias.fill_(float("nan"))  # every logit NaN: the loss cannot be finite
    save_checkpoint(tmp_path / "nan.pth", model, dataset="mnist", arch="cnn", hp=hp)
    assert main([str(tmp_path / "nan.pth"), "--data-dir", str(data_root)]) == 0
    assert "test_loss not finite over 50 test samples" in capsys.readouterr().out


def test_testing_a_checkpoint_imports_neither_ray_tune_nor_optuna():
    probe = "import sys, study.evaluate; print(sorted(m for m in ('ray.tune', 'optuna') if m in sys.modules))"
    finished = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "[]"
