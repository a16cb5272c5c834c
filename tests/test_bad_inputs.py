"""Every command, driven with a table of bad inputs: exit status 2, a one-paragraph message, no traceback,
nothing written. Each row runs the command's own `main` in this process, up to the point where it refuses."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from analysis import gradcam, report, spikes
from study import bench, evaluate
from study import run as study_run
from study.checkpoint import save_checkpoint
from study.config import Hyperparams
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
    broken = {"empty-summary": ({"settings": {"data_dir": str(data_root)}}, {}), "no-settings": ({}, {}), "list-study": ([], [1])}
    for name, (study, summary) in broken.items():
        (folder / "results" / name).mkdir(parents=True)
        (folder / "results" / name / "study.json").write_text(json.dumps(study))
        (folder / "results" / name / "summary.json").write_text(json.dumps(summary))
    return folder


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
    (["nmnist", "--arch", "scnn", "--fix", "num_steps=0"], "--fix: num_steps=0: it must be a whole number of at least 1."),
    (["nmnist", "--fix", "lr=-1"], "--fix: lr=-1.0: it must be a positive number."),
    (["nmnist", "--fix", "lr=nan"], "--fix: lr=nan is not a finite number."),
]


@pytest.mark.parametrize("argv, says", RUN, ids=[" ".join(argv)[:40] for argv, _ in RUN])
def test_study_run_refuses_bad_input_before_writing_anything(argv, says, workspace, capsys):
    args = [*argv, "--synthetic", *([] if "--data-dir" in argv else ["--data-dir", "data"]), "--storage", "results-run"]
    assert exit_status(study_run.main, args) == 2
    assert says in " ".join(capsys.readouterr().err.split())
    assert not (workspace / "results-run").exists() or not list((workspace / "results-run").iterdir())
    assert not (workspace / "checkpoints").exists()
    assert (workspace / "a-file").read_text() == "not a folder"


EVALUATE = [
    (["missing.pth"], "No checkpoint file at missing.pth"),
    (["no-steps.pth"], "no-steps.pth holds a hyperparameter no model can be built with: num_steps=0: it must be a whole number of at least 1."),
    (["negative-steps.pth"], "num_steps=-3: it must be a whole number of at least 1."),
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
]


@pytest.mark.parametrize("argv, says", BENCH, ids=[" ".join(argv) for argv, _ in BENCH])
def test_study_bench_refuses_bad_input_before_measuring(argv, says, workspace, capsys):
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
]


@pytest.mark.parametrize("argv, says", REPORT, ids=[" ".join(argv)[:40] for argv, _ in REPORT])
def test_analysis_report_refuses_bad_input(argv, says, workspace, capsys):
    assert exit_status(report.main, argv) == 2
    assert says in " ".join(capsys.readouterr().err.split())
    assert not (workspace / "reports").exists()


PER_CHECKPOINT = [
    (["missing.pth"], "No checkpoint file at missing.pth"),
    (["no-steps.pth"], "num_steps=0: it must be a whole number of at least 1."),
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
