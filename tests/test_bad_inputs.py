"""Every command, driven with a table of bad inputs: exit status 2, a one-paragraph message, no traceback,
nothing written. Each row runs the command's own `main` in this process, up to the point where it refuses."""

from __future__ import annotations

import http.server
import json
import os
import pickle
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis import gradcam, report, spikes
from study import bench, evaluate
from study import run as study_run
from study.checkpoint import CHECKPOINT_VERSION, save_checkpoint
from study.config import Hyperparams
from study.data.synthetic import write_idx
from study.registry import build_model

LONG_NAME = "n" * 300


def exit_status(main, argv: list[str]) -> int:
    """The status the command exits with, whether it returns it or argparse raises it."""
    try:
        return main(argv)
    except SystemExit as exited:
        return exited.code


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, data_root) -> Path:
    """A folder with a file where folders are expected, checkpoints that cannot be used, and broken experiments."""
    folder = tmp_path_factory.mktemp("bad-inputs")
    (folder / "a-file").write_text("not a folder")
    (folder / "empty.pth").write_bytes(b"")
    (folder / "best.onnx").write_bytes(b"\x08\x07")  # what study.export writes beside best.pth
    for name, steps in (("no-steps", 0), ("negative-steps", -3), ("usable", 4)):
        hp = Hyperparams(num_steps=4)
        save_checkpoint(folder / f"{name}.pth", build_model("nmnist", "scnn", hp), dataset="nmnist", arch="scnn", hp=Hyperparams(num_steps=steps))
    save_checkpoint(folder / "huge-steps.pth", build_model("nmnist", "scnn", Hyperparams(num_steps=4)), dataset="nmnist", arch="scnn", hp=Hyperparams(num_steps=10**9))
    save_checkpoint(folder / "mnist.pth", build_model("mnist", "cnn", Hyperparams()), dataset="mnist", arch="cnn", hp=Hyperparams())
    whole = torch.load(folder / "usable.pth", weights_only=True)
    torch.save({**whole, "model": None}, folder / "none-model.pth")
    torch.save({**whole, "model": [1, 2]}, folder / "list-model.pth")
    torch.save({**whole, "version": str(CHECKPOINT_VERSION)}, folder / "string-version.pth")
    os.mkfifo(folder / "pipe.pth")
    damaged_mnist(folder, data_root)
    damaged_nmnist(folder, data_root)
    (folder / "empty-folder").mkdir()
    (folder / "big-table.json").write_text("{}" + " " * 2_000_000)
    broken = {"empty-summary": ({"settings": {"data_dir": str(data_root)}}, {}), "no-settings": ({}, {}), "list-study": ([], [1])}
    for name, (study, summary) in broken.items():
        (folder / "results" / name).mkdir(parents=True)
        (folder / "results" / name / "study.json").write_text(json.dumps(study))
        (folder / "results" / name / "summary.json").write_text(json.dumps(summary))
    return folder


def damaged_mnist(folder: Path, data_root: Path) -> None:
    """MNIST folders whose test files are damaged: an empty images file, a label of 200, fewer labels than images."""
    for name in ("empty-images", "label-200", "few-labels"):
        shutil.copytree(data_root / "MNIST", folder / name / "MNIST")
    raw = "MNIST/raw"
    (folder / "empty-images" / raw / "t10k-images-idx3-ubyte").write_bytes(b"")
    labels = folder / "label-200" / raw / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-1] + bytes([200]))
    write_idx(folder / "few-labels" / raw / "t10k-labels-idx1-ubyte", np.arange(10))


def damaged_nmnist(folder: Path, data_root: Path) -> None:
    """N-MNIST folders for study.bench: one with a damaged training file, one with a training folder but no files."""
    shutil.copytree(data_root / "NMNIST", folder / "damaged-nmnist" / "NMNIST")
    damaged = sorted((folder / "damaged-nmnist" / "NMNIST" / "Train").glob("*/*.bin"))[3]
    damaged.write_bytes(damaged.read_bytes()[:7])  # not a whole number of 5-byte events
    (folder / "incomplete-nmnist" / "NMNIST" / "Train" / "0").mkdir(parents=True)


@pytest.fixture(scope="module")
def web_server():
    """The port of a web server on loopback: something listens there, but not Ray."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def workspace(prepared, monkeypatch) -> Path:
    """The commands run in `prepared`, never touching this process's Ray settings."""
    monkeypatch.chdir(prepared)
    monkeypatch.setattr(study_run, "use_token_to_join", lambda address: None)
    return prepared


RUN = [
    (["nmnist", "--seed", "-1"], "--seed: must be a whole number from 0 to 2147483647, not -1"),
    (["nmnist", "--seed", "100000000000000000000"], "--seed: must be a whole number from 0 to 2147483647"),
    (["nmnist", "--seed", "1e20"], "--seed: must be a whole number from 0 to 2147483647, not 1e20"),
    (["nmnist", "--cpus-per-trial", "nan"], "--cpus-per-trial: must be positive, not nan"),
    (["nmnist", "--gpus-per-trial", "nan"], "--gpus-per-trial: must be zero or positive, not nan"),
    (["nmnist", "--cpus-per-trial", "inf"], "--cpus-per-trial: must be positive, not inf"),
    (["nmnist", "--name", LONG_NAME], "--name is 300 characters long: it names a folder under --storage, so use at most 100."),
    (["nmnist", "--checkpoints-dir", "a-file"], "a-file is a file; it must be a folder"),
    (["nmnist", "--checkpoints-dir", "a-file/inside"], "lies inside"),
    (["nmnist", "--data-dir", "a-file/inside"], "--data-dir"),
    (["nmnist", "--data-dir", "/proc/no-data-here"], "--data-dir /proc/no-data-here/synthetic cannot be written: /proc refuses new files"),
    (["nmnist", "--address", f"127.0.0.1:{closed_port()}"], "nothing answers there"),
    (["nmnist", "--address", "127.0.0.1:port"], "'port' is not a port"),
    (["nmnist", "--dashboard-host", "999.1.1.1"], "--dashboard-host 999.1.1.1: the Ray dashboard cannot listen there"),
    (["nmnist", "--address", "127.0.0.1:WEB_PORT"], "something listens there, but it is not Ray"),
    (["nmnist", "--arch", "scnn", "--fix", "num_steps=0"], "--fix: num_steps=0: it must be a whole number from 1 to 10000."),
    (["nmnist", "--arch", "scnn", "--fix", "num_steps=100000000"], "--fix: num_steps=100000000: it must be a whole number from 1 to 10000."),
    (["nmnist", "--name", ""], "argument --name: must not be empty"),
    (["nmnist", "--storage", ""], "argument --storage: must not be empty"),
    (["nmnist", "--data-dir", ""], "argument --data-dir: must not be empty"),
    (["nmnist", "--checkpoints-dir", " "], "argument --checkpoints-dir: must not be empty"),
    (["nmnist", "--fix", "lr=-1"], "--fix: lr=-1.0: it must be a positive number."),
    (["nmnist", "--fix", "lr=nan"], "--fix: lr=nan is not a finite number."),
]


@pytest.mark.parametrize("argv, says", RUN, ids=[" ".join(argv)[:40] for argv, _ in RUN])
def test_study_run_refuses_bad_input_before_writing_anything(argv, says, workspace, web_server, capsys):
    argv = [word.replace("WEB_PORT", str(web_server)) for word in argv]
    args = [*argv, "--synthetic", *([] if "--data-dir" in argv else ["--data-dir", "data"]), *([] if "--storage" in argv else ["--storage", "results-run"])]
    assert exit_status(study_run.main, args) == 2
    assert says in " ".join(capsys.readouterr().err.split())
    assert not (workspace / "results-run").exists() or not list((workspace / "results-run").iterdir())  # no lock left either
    assert not (workspace / "checkpoints").exists()
    assert (workspace / "a-file").read_text() == "not a folder"


EVALUATE = [
    (["missing.pth"], "No checkpoint file at missing.pth"),
    (["no-steps.pth"], "no-steps.pth holds a hyperparameter no model can be built with: num_steps=0: it must be a whole number from 1 to 10000."),
    (["negative-steps.pth"], "num_steps=-3: it must be a whole number from 1 to 10000."),
    (["huge-steps.pth"], "huge-steps.pth holds a hyperparameter no model can be built with: num_steps=1000000000: it must be a whole number from 1 to 10000."),
    (["none-model.pth"], 'none-model.pth holds no model weights: its "model" entry is None, not a table of named tensors'),
    (["list-model.pth"], 'its "model" entry is a list, not a table of named tensors'),
    (["string-version.pth"], "string-version.pth is not a snn-study checkpoint: its layout version is '2', not a whole number"),
    (["pipe.pth"], "pipe.pth is not a regular file (a device, a pipe or a socket), so not a checkpoint."),
    (["/dev/zero"], "/dev/zero is not a regular file"),
    ([""], "argument checkpoint: must not be empty"),
    (["usable.pth", "--data-dir", ""], "argument --data-dir: must not be empty"),
    (["mnist.pth", "--data-dir", "empty-images"], "empty-images/MNIST/raw/t10k-images-idx3-ubyte (it is empty)"),
    (["mnist.pth", "--data-dir", "label-200"], "t10k-labels-idx1-ubyte (1 of its 50 labels are not classes 0 to 9 (label 200 at index 49))"),
    (["mnist.pth", "--data-dir", "label-200", "--test-limit", "10"], "(1 of its 50 labels are not classes 0 to 9"),  # before: dropped without a word
    (["mnist.pth", "--data-dir", "few-labels"], "(it holds 10 labels, but t10k-images-idx3-ubyte beside it holds 50 images"),
    (["a-file"], "a-file is not a snn-study checkpoint that can be loaded safely (torch.load refused it: Unsupported operand 110)."),
    (["empty.pth"], "empty.pth is empty: not a snn-study checkpoint."),
    (["best.onnx"], "best.onnx is a model exported as ONNX; give the best.pth beside it."),
    (["no-steps.pth", "--test-limit", "0"], "--test-limit: must be a whole number of at least 1, not 0"),
    (["usable.pth", "--test-limit", "5"], "--test-limit 5 is smaller than the 10 classes of nmnist: some classes would have no sample"),
]


@pytest.mark.parametrize("argv, says", EVALUATE, ids=[" ".join(argv) for argv, _ in EVALUATE])
def test_study_evaluate_refuses_bad_input(argv, says, workspace, capsys):
    assert exit_status(evaluate.main, argv) == 2
    assert says in " ".join(capsys.readouterr().err.split())


BENCH = [
    (["--device", "tpu"], "--device 'tpu': the benchmark runs on cpu or cuda"),
    (["--out", "a-file/bench.json"], "a-file is a file; it must be a folder"),
    (["--out", "."], "is a folder; give the path of a file to write."),
    (["--search", "--out", "a-file/x.json"], "a-file is a file; it must be a folder"),
    (["--search", "--archs", "cnn,transformer"], "Unknown architecture or data set transformer"),
    (["--threads", "0"], "--threads: must be a whole number of at least 1, not 0"),
    (["--threads", "99999"], "--threads 99999: this machine has"),
    (["--search", "--seed", "-1"], "--seed: must be a whole number from 0 to 2147483647, not -1"),
    (["--out", ""], "argument --out: must not be empty"),
    (["--data-dir", ""], "argument --data-dir: must not be empty"),
    (["--data-dir", "a-file"], "--data-dir a-file is not a folder"),
    (["--data-dir", "empty-folder"], "--data-dir empty-folder holds no N-MNIST (no empty-folder/NMNIST folder)"),
    (["--data-dir", "incomplete-nmnist"], "The nmnist training split is not under incomplete-nmnist and could not be downloaded"),
    (["--data-dir", "damaged-nmnist"], "(ValueError: 7 bytes is not a whole number of 5-byte events)"),
]


@pytest.mark.parametrize("argv, says", BENCH, ids=[" ".join(argv) for argv, _ in BENCH])
def test_study_bench_refuses_bad_input_before_measuring(argv, says, workspace, no_network, monkeypatch, capsys):
    def measure(*args):
        raise AssertionError("the benchmark measured before it refused its input")

    monkeypatch.setattr(bench, "matmul_flops", measure)
    assert exit_status(bench.main, argv) == 2
    assert says in " ".join(capsys.readouterr().err.split())
    assert not (workspace / "bench.json").exists()


REPORT = [
    (["empty-summary"], "empty-summary/summary.json is not a summary this snn-study can read"),
    (["no-settings"], 'no-settings/study.json is not a study record this snn-study can read: it has no "settings"'),
    (["list-study"], "list-study/study.json is not a study record"),
    (["empty-summary", "--out-dir", "a-file"], "a-file is a file; it must be a folder"),  # before any experiment is read
    (["empty-summary", "--samples", "0"], "--samples: must be a whole number of at least 1, not 0"),
    (["nowhere"], "No experiment 'nowhere'"),
    (["empty-summary", "--energy-table", "empty-folder"], "Energy table empty-folder: not a regular file"),
    (["empty-summary", "--energy-table", "big-table.json"], "Energy table big-table.json: 2,000,002 bytes, more than an energy table's few lines"),
]


@pytest.mark.parametrize("argv, says", REPORT, ids=[" ".join(argv)[:40] for argv, _ in REPORT])
def test_analysis_report_refuses_bad_input(argv, says, workspace, capsys):
    assert exit_status(report.main, argv) == 2
    assert says in " ".join(capsys.readouterr().err.split())
    assert not (workspace / "reports").exists()


PER_CHECKPOINT = [
    (["missing.pth"], "No checkpoint file at missing.pth"),
    (["no-steps.pth"], "num_steps=0: it must be a whole number from 1 to 10000."),
    (["huge-steps.pth"], "num_steps=1000000000: it must be a whole number from 1 to 10000."),
    (["none-model.pth"], 'holds no model weights: its "model" entry is None'),
    (["usable.pth", "--out", ""], "argument --out: must not be empty"),
    (["mnist.pth", "--data-dir", "label-200"], "(1 of its 50 labels are not classes 0 to 9"),
    (["negative-steps.pth", "--out", "a-file"], "a-file is a file; it must be a folder"),
    (["missing.pth", "--out", "a-file/gradcam"], "lies inside"),
    (["no-steps.pth", "--samples", "0"], "--samples: must be a whole number of at least 1, not 0"),
]


@pytest.mark.parametrize("command", [gradcam, spikes], ids=["gradcam", "spikes"])
@pytest.mark.parametrize("argv, says", PER_CHECKPOINT, ids=[" ".join(argv) for argv, _ in PER_CHECKPOINT])
def test_analysis_gradcam_and_spikes_refuse_bad_input(command, argv, says, workspace, capsys):
    assert exit_status(command.main, argv) == 2
    assert says in " ".join(capsys.readouterr().err.split())
    assert not (workspace / "reports").exists()


def test_a_report_label_too_long_for_a_folder_is_refused(tmp_path):
    from types import SimpleNamespace

    from study.errors import UserError

    experiments = [SimpleNamespace(name="study-a", path=tmp_path / "study-a")]
    with pytest.raises(UserError, match="--label is 300 characters long: it names a folder under --out-dir, so use at most 100"):
        report.report_folder(experiments, LONG_NAME, tmp_path)
    many = [SimpleNamespace(name=f"{'x' * 60}-{index}", path=tmp_path / f"{'x' * 60}-{index}") for index in range(3)]  # their default label is too long too
    with pytest.raises(UserError, match="The default --label"):
        report.report_folder(many, None, tmp_path)
    assert report.report_folder(experiments, None, tmp_path) == tmp_path.resolve() / "study-a"


def _record(**changes) -> dict:
    """A study.json record as study.run writes it, with `changes` ("settings.x": a change inside its settings)."""
    args = study_run.build_parser().parse_args(["nmnist", "--synthetic", "--storage", "unused"])
    record = study_run.to_record(study_run.interpret(args))
    for key, value in changes.items():
        holder, _, name = key.rpartition(".")
        (record[holder] if holder else record)[name] = value
    return record


RESUME = {
    "{}": ({}, 'study.json is not a study record this snn-study can read: its "settings" is missing, not an object'),
    "[]": ([], "study.json is not a study record this snn-study can read: it holds a list, not an object"),
    "null": (None, "it holds null, not an object"),
    "only a data_dir": ({"settings": {"data_dir": "/tmp"}}, "it lacks 'name', 'storage', 'num_samples'"),
    "an unknown setting": (_record(**{"settings.bogus": 1}), "\"settings\" has keys this snn-study does not know: 'bogus'"),
    "max_epochs -1": (_record(**{"settings.max_epochs": -1}), "\"settings\"'s 'max_epochs' is -1; it must be at least 1"),
    "a number as data_dir": (_record(**{"settings.data_dir": 5}), "\"settings\"'s 'data_dir' is a whole number (5), not a path"),
    "settings a string": (_record(**{"settings": "nmnist"}), 'its "settings" is a string, not an object'),
    "an unknown arch": (_record(archs=["cnn", "transformer"]), "it names the architecture 'transformer'"),
    "an unknown fixed name": (_record(fixed={"betta": 0.9}), "its \"fixed\" hyperparameters name 'betta'"),
}


@pytest.mark.parametrize("record, says", RESUME.values(), ids=RESUME)
def test_study_run_resume_refuses_a_study_json_of_the_wrong_shape(record, says, workspace, capsys):
    """A study.json that parses but is not a study record (edited by hand, written by something else)."""
    experiment = workspace / "results-resume" / "shaped"
    experiment.mkdir(parents=True, exist_ok=True)
    (experiment / "study.json").write_text(json.dumps(record))
    (experiment / "tuner.pkl").write_bytes(pickle.dumps({}))  # Ray Tune's saved state, so that it counts as resumable
    assert exit_status(study_run.main, ["nmnist", "--name", "shaped", "--storage", "results-resume", "--resume"]) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert f"--resume: {experiment}/study.json is not a study record" in error and says in error and "Nothing was changed" in error
    assert json.loads((experiment / "study.json").read_text()) == record
    assert sorted(path.name for path in experiment.iterdir()) == ["study.json", "tuner.pkl"]


def test_study_run_stops_on_damaged_mnist_files_before_any_trial(workspace, capsys):
    """The driver checks MNIST's idx files before any trial, as it decodes event files first."""
    argv = ["mnist", "--arch", "cnn", "--data-dir", "label-200", "--storage", "results-mnist", "--name", "damaged"]
    assert exit_status(study_run.main, argv) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert "Cannot read" in error and "label-200/MNIST/raw/t10k-labels-idx1-ubyte (1 of its 50 labels are not classes 0 to 9" in error
    assert not (workspace / "results-mnist" / "damaged").exists()


@pytest.mark.parametrize("command, says", [(evaluate, "nothing was tested."), (bench, "nothing was measured to the end, and bench.json was not written.")])
def test_ctrl_c_stops_evaluate_and_bench_with_one_line_and_status_130(command, says, workspace, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "load_model" if command is evaluate else "run", interrupted)
    try:
        status = exit_status(command.main, ["usable.pth"] if command is evaluate else [])
    except KeyboardInterrupt:  # escaping, it would stop pytest itself
        pytest.fail("the KeyboardInterrupt escaped the command (a traceback for the user)")
    assert status == 130
    printed = capsys.readouterr()
    assert printed.err == f"Interrupted: {says}\n" and "Traceback" not in printed.out
    assert not (workspace / "bench.json").exists()


def test_an_energy_table_that_is_a_pipe_is_refused_without_reading_it(tmp_path):
    """A pipe (or /dev/zero) would be read until it ends, or forever: refused before it is opened."""
    from study.energy import load_energy_table
    from study.errors import UserError

    os.mkfifo(tmp_path / "table.json")
    outcome = []

    def load():
        try:
            load_energy_table(tmp_path / "table.json")
        except UserError as error:
            outcome.append(str(error))

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # it opened the pipe and waits for a writer: let it end
        with open(tmp_path / "table.json", "w"):
            pass
        reader.join(timeout=10)
    assert outcome and "not a regular file" in outcome[0]
