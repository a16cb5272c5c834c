"""Bad input: a clear one-paragraph message and exit status 2, never a traceback, nothing lost."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from study.data.synthetic import ensure_synthetic, write_nmnist
from study.run import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "study.run", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args, says",
    [
        (["imagenet"], "invalid choice: 'imagenet' (choose from 'dvsgesture', 'mnist', 'nmnist')"),
        (["nmnist", "--arch", "transformer"], "--arch: unknown architecture 'transformer': choose from cnn, scnn, slstm"),
        (["nmnist", "--num-samples", "0"], "--num-samples: must be a whole number of at least 1, not 0"),
        (["nmnist", "--max-epochs", "-3"], "--max-epochs: must be a whole number of at least 1, not -3"),
        (["nmnist", "--cpus-per-trial", "0"], "--cpus-per-trial: must be positive, not 0"),
        (["nmnist", "--gpus-per-trial", "-1"], "--gpus-per-trial: must be zero or positive, not -1"),
        (["nmnist", "--train-limit", "many"], "--train-limit: must be a whole number of at least 1, not many"),
        (["nmnist", "--max-failures", "-1"], "--max-failures: must be a whole number of at least 0, not -1"),
    ],
)
def test_impossible_arguments_exit_2_with_a_message(args, says, capsys):
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, says",
    [(["nmnist", "--num-samples", "0"], "must be a whole number of at least 1"), (["nmnist", "--name", "../escape"], "letters, digits")],
)
def test_the_real_process_prints_no_traceback(args, says, tmp_path):
    finished = run_cli(*args, "--storage", str(tmp_path))
    assert finished.returncode == 2
    assert says in finished.stderr
    assert "Traceback" not in finished.stderr


def test_absent_dataset_without_network_exits_2_naming_the_folder(tmp_path, capsys, no_network):
    status = main(["mnist", "--data-dir", str(tmp_path / "data"), "--storage", str(tmp_path / "results")])
    error = capsys.readouterr().err
    assert status == 2
    assert str(tmp_path / "data") in error.replace("\n", " ") and "train-images-idx3" in error
    assert not (tmp_path / "results" / "mnist-cnn").exists()  # no experiment was started


def test_a_name_that_would_leave_the_storage_folder_exits_2(tmp_path, capsys):
    assert main(["nmnist", "--name", "../escape", "--storage", str(tmp_path)]) == 2
    assert "letters, digits" in capsys.readouterr().err


def test_storage_that_cannot_hold_experiments_exits_2(tmp_path, capsys):
    (tmp_path / "results").write_text("a file, not a folder")
    assert main(["nmnist", "--synthetic", "--data-dir", str(tmp_path / "data"), "--storage", str(tmp_path / "results")]) == 2
    assert "cannot hold experiments" in capsys.readouterr().err.replace("\n", " ")
    assert (tmp_path / "results").read_text() == "a file, not a folder"


def test_data_dir_that_is_a_file_exits_2(tmp_path, capsys):
    (tmp_path / "data").write_text("not a folder")
    assert main(["nmnist", "--data-dir", str(tmp_path / "data")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert (tmp_path / "data").read_text() == "not a folder"


def test_existing_experiment_is_not_overwritten_and_unknown_one_not_resumed(tmp_path, capsys):
    experiment = tmp_path / "results" / "mine"
    experiment.mkdir(parents=True)
    (experiment / "precious.json").write_text("{}")
    args = ["nmnist", "--synthetic", "--data-dir", str(tmp_path / "data"), "--storage", str(tmp_path / "results")]
    assert main([*args, "--name", "mine"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (experiment / "precious.json").read_text() == "{}"
    assert main([*args, "--name", "other", "--resume"]) == 2
    assert "no experiment 'other'" in capsys.readouterr().err
    exported = tmp_path / "checkpoints" / "other" / "scnn" / "best.pth"
    exported.parent.mkdir(parents=True)
    exported.write_bytes(b"an earlier study's model")
    assert main([*args, "--name", "other", "--checkpoints-dir", str(tmp_path / "checkpoints")]) == 2
    assert "from an earlier study named 'other'" in capsys.readouterr().err.replace("\n", " ")
    assert exported.read_bytes() == b"an earlier study's model"


def test_more_gpus_per_trial_than_the_cluster_has_exits_2(tmp_path, capsys, ray_runtime):
    args = ["nmnist", "--smoke", "--synthetic", "--data-dir", str(tmp_path / "data"), "--storage", str(tmp_path / "results")]
    assert main([*args, "--gpus-per-trial", "4"]) == 2
    assert "more GPUs than any node of the Ray cluster has" in capsys.readouterr().err.replace("\n", " ")
    assert main([*args, "--cpus-per-trial", "64"]) == 2
    assert "more CPUs than any node of the Ray cluster has" in capsys.readouterr().err.replace("\n", " ")


def test_corrupt_event_files_stop_the_study_before_any_trial_naming_a_file(tmp_path, capsys):
    root = ensure_synthetic("nmnist", tmp_path / "data" / "synthetic", write_nmnist, 20, 5)
    for sample in (root / "NMNIST" / "Train" / "3").glob("*.bin"):  # every subset holds some threes
        sample.write_bytes(sample.read_bytes()[:-2])
    args = ["nmnist", "--arch", "cnn", "--smoke", "--synthetic", "--max-failures", "0", "--data-dir", str(tmp_path / "data"),
            "--storage", str(tmp_path / "results"), "--checkpoints-dir", str(tmp_path / "checkpoints")]
    assert main(args) == 2
    error = capsys.readouterr().err.replace("\n", " ")
    assert re.search(r"Cannot read \S+/Train/3/\d+\.bin", error)
    assert "truncated or corrupt" in error
    assert not (tmp_path / "results" / "nmnist-cnn-synthetic").exists()  # the driver decodes first: no trial ran


@pytest.mark.parametrize(
    "args, says",
    [
        (["mnist", "--preset", "dvsgesture-dvs128"], "Unknown preset 'dvsgesture-dvs128' for mnist. Presets for mnist: mnist-csnn"),
        (["mnist", "--arch", "scnn", "--fix", "readout=votes"], "Unknown readout 'votes'. Valid readouts: membrane_max, membrane_mean, spikes."),
        (["mnist", "--fix", "blocks=5"], "blocks=5 do not fit a 28x28 input: each block halves the frame, so at most 4 fit"),
        (["mnist", "--fix", "pooling=median"], "Unknown pooling 'median'. Valid poolings: avg, max."),
        (["mnist", "--arch", "scnn", "--fix", "reset=none"], "Unknown reset 'none'. Valid resets: subtract, zero."),
    ],
)
def test_bad_presets_names_and_capacities_exit_2_before_any_trial(args, says, tmp_path, capsys):
    status = main([*args, "--synthetic", "--data-dir", str(tmp_path / "data"), "--storage", str(tmp_path / "results")])
    assert status == 2
    assert says in " ".join(capsys.readouterr().err.split())
    assert not list((tmp_path / "results").glob("*"))  # no experiment was started


@pytest.mark.parametrize(
    "args, says",
    [
        (["nmnist", "--arch", "cnn,transformer"], "--arch: unknown architecture 'transformer': choose from cnn, scnn, slstm"),
        (["nmnist", "--arch", "scnn,cnn,scnn"], "--arch: 'scnn,cnn,scnn' names an architecture twice"),
        (["nmnist", "--repeats", "-1"], "--repeats: must be a whole number of at least 0, not -1"),
        (["nmnist", "--repeats", "three"], "--repeats: must be a whole number of at least 0, not three"),
        (["nmnist", "--objective", "accuracy,latency"], "--objective: unknown objective 'latency': choose from accuracy, energy"),
        (["nmnist", "--objective", "energy,accuracy"], "--objective: 'energy,accuracy': give accuracy first"),
        (["nmnist", "--objective", "accuracy,accuracy"], "--objective: 'accuracy,accuracy': give accuracy first"),
    ],
)
def test_bad_architecture_lists_repeats_and_objectives_exit_2(args, says, capsys):
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("limit", ["--train-limit", "--val-limit", "--test-limit"])
def test_limits_below_the_number_of_classes_exit_2(limit, tmp_path, capsys):
    assert main(["dvsgesture", limit, "5", "--synthetic", "--data-dir", str(tmp_path / "data"), "--storage", str(tmp_path / "results")]) == 2
    assert f"{limit} 5 is smaller than the 11 classes of dvsgesture" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").iterdir())
