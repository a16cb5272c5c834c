"""An interrupted study is never taken for a finished one: it exits 130 with the line that resumes it, and
its damaged saved state is named instead of being resumed forever."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from study import run as study_run
from study.errors import UserError
from study.saved_state import DamagedState, check_restorable, every_trial_ended, saved_trial_statuses
from study.storage import one_driver, save_study


def write_state(experiment: Path, statuses: list[str], name: str = "experiment_state-2026-01-01_00-00-00.json") -> None:
    """An experiment state as Ray Tune saves it: one JSON-encoded trial per entry, beside its runtime data."""
    trials = [[json.dumps({"trial_id": f"t{index}", "status": status}), "{}"] for index, status in enumerate(statuses)]
    experiment.mkdir(parents=True, exist_ok=True)
    (experiment / name).write_text(json.dumps({"trial_data": trials, "runner_data": {}, "stats": {}}))


class Results:
    """What Tuner.fit() returns after an interruption: every trial marked TERMINATED."""

    def __init__(self, trials: int):
        self.num_terminated, self.num_errors, self.trials = trials, 0, trials

    def __len__(self) -> int:
        return self.trials


class Tuner:
    def __init__(self, results):
        self.results = results

    def fit(self):
        return self.results


def test_a_phase_ended_only_when_its_saved_state_records_every_trial_ended(tmp_path):
    write_state(tmp_path / "a", ["TERMINATED", "ERROR"])
    assert every_trial_ended(str(tmp_path / "a"), 2)
    assert not every_trial_ended(str(tmp_path / "a"), 3)  # a trial not even asked for yet
    write_state(tmp_path / "b", ["TERMINATED", "RUNNING"])
    write_state(tmp_path / "b", ["TERMINATED", "TERMINATED"], name="experiment_state-2025-01-01_00-00-00.json")  # older
    assert saved_trial_statuses(str(tmp_path / "b")) == {"t0": "TERMINATED", "t1": "RUNNING"}
    assert not every_trial_ended(str(tmp_path / "b"), 2)
    assert not every_trial_ended(str(tmp_path / "none"), 1)


def test_fit_takes_trials_tune_stopped_on_an_interruption_for_unfinished(tmp_path):
    write_state(tmp_path, ["TERMINATED", "RUNNING"])  # saved before Tune stopped the running trial
    results = Results(2)
    assert study_run.fit(lambda: Tuner(results), str(tmp_path), 2) is None
    write_state(tmp_path, ["TERMINATED", "TERMINATED"])
    assert study_run.fit(lambda: Tuner(results), str(tmp_path), 2) is results


def invocation(tmp_path: Path, *extra: str):
    args = study_run.build_parser().parse_args(["nmnist", "--synthetic", "--storage", str(tmp_path / "results"), "--name", "stopped", *extra])
    return study_run.interpret(args)


@pytest.mark.parametrize("started", [True, False], ids=["after study.json", "before"])
def test_an_interrupted_command_exits_130_and_says_how_to_resume(started, tmp_path, monkeypatch, capsys):
    def interrupted_study(invocation, *args):
        if started:
            save_study(invocation.storage, invocation.name, study_run.to_record(invocation))
        raise KeyboardInterrupt

    monkeypatch.setattr(study_run, "run_study", interrupted_study)
    assert study_run.main(["nmnist", "--synthetic", "--storage", str(tmp_path / "my results"), "--name", "stopped"]) == 130
    printed = capsys.readouterr()
    if started:
        assert f"Continue it with:\n  python -m study.run nmnist --name stopped --storage '{tmp_path / 'my results'}' --resume" in printed.out
    else:
        assert "nothing was saved" in printed.err and "--resume" not in printed.out


def test_a_damaged_saved_state_is_named_instead_of_resumed(tmp_path, capsys):
    experiment = tmp_path / "results" / "stopped"
    save_study(str(tmp_path / "results"), "stopped", study_run.to_record(invocation(tmp_path)))
    (experiment / "tuner.pkl").write_bytes(pickle.dumps({"a": list(range(100))}))
    write_state(experiment, ["TERMINATED", "RUNNING"])
    check_restorable(str(experiment))  # whole: no complaint

    state = next(experiment.glob("experiment_state-*.json"))
    state.write_bytes(state.read_bytes()[:50])
    with pytest.raises(DamagedState, match="experiment_state-.*json is not a whole experiment state"):
        check_restorable(str(experiment))
    args = ["nmnist", "--storage", str(tmp_path / "results"), "--name", "stopped", "--resume"]
    assert study_run.main(args) == 2
    assert "is damaged" in capsys.readouterr().err

    write_state(experiment, ["TERMINATED", "RUNNING"])
    (experiment / "tuner.pkl").write_bytes(pickle.dumps({"a": list(range(100))})[:-20])
    assert study_run.main(args) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert "tuner.pkl is truncated or overwritten" in error and "Start the study again under another --name" in error


def test_resume_exports_to_a_corrected_checkpoints_dir(tmp_path, capsys):
    started = invocation(tmp_path, "--checkpoints-dir", str(tmp_path / "a-file"))
    save_study(started.storage, started.name, study_run.to_record(started))
    (tmp_path / "results" / "stopped" / "tuner.pkl").write_bytes(pickle.dumps({}))
    asked = invocation(tmp_path, "--resume")
    assert study_run.resumed(asked).checkpoints_dir == tmp_path / "a-file"  # as started
    assert study_run.resumed(asked, Path(tmp_path / "good")).checkpoints_dir == tmp_path / "good"


def typed(argv: list[str]) -> frozenset[str]:
    parser = study_run.build_parser()
    return study_run.typed_flags(parser, argv, parser.parse_args(argv))


def test_typed_flags_are_told_from_defaults():
    assert typed(["nmnist", "--resume", "--fix", "lr=0.1", "--seed", "0", "--no-calibration"]) == {
        "dataset", "resume", "fix", "seed", "calibrate"
    }
    assert typed(["mnist"]) == {"dataset"}


def test_resume_refuses_a_flag_it_would_ignore(tmp_path, capsys):
    """Adding --num-samples 50 to a --resume cannot extend the study; it must not be dropped without a word."""
    started = invocation(tmp_path, "--num-samples", "3", "--fix", "lr=0.01")
    save_study(started.storage, started.name, study_run.to_record(started))
    study_json = tmp_path / "results" / "stopped" / "study.json"
    before = study_json.read_bytes()
    (tmp_path / "results" / "stopped" / "tuner.pkl").write_bytes(pickle.dumps({}))
    common = ["nmnist", "--synthetic", "--storage", str(tmp_path / "results"), "--name", "stopped", "--resume"]
    assert study_run.main([*common, "--num-samples", "50", "--seed", "0"]) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert "--num-samples (num_samples 50, not the study's 3)" in error and "--seed" not in error  # --seed 0 is the study's
    assert study_json.read_bytes() == before
    assert study_run.main([*common, "--smoke", "--no-calibration"]) == 2  # --smoke's 2 trials against the study's 3
    error = " ".join(capsys.readouterr().err.split())
    assert "--smoke (num_samples 2, not the study's 3)" in error and "--no-calibration (calibrate False" in error

    same = [*common, "--num-samples", "3", "--fix", "lr=0.01"]  # the starting command again, with --resume: nothing ignored
    assert study_run.resumed(study_run.interpret(study_run.build_parser().parse_args(same)), typed=typed(same)).num_samples == 3
    changed = [*common, "--fix", "lr=0.1"]
    asked = study_run.interpret(study_run.build_parser().parse_args(changed))
    with pytest.raises(UserError, match="--fix"):
        study_run.resumed(asked, typed=typed(changed))


def test_a_second_driver_of_a_running_experiment_is_refused(tmp_path, capsys):
    """A --resume typed in another terminal while the study runs would train its trials twice."""
    started = invocation(tmp_path)
    save_study(started.storage, started.name, study_run.to_record(started))
    (tmp_path / "results" / "stopped" / "tuner.pkl").write_bytes(pickle.dumps({}))
    with one_driver(started.storage, started.name):  # what the running driver holds
        assert study_run.main(["nmnist", "--storage", str(tmp_path / "results"), "--name", "stopped", "--resume"]) == 2
    assert "is being run by another process right now" in " ".join(capsys.readouterr().err.split())


def test_two_fresh_starts_of_one_experiment_cannot_both_run(tmp_path, capsys):
    """The same new study typed twice: the second must not pass the "does it exist" check while the first
    is still preparing its data, before the first has written study.json."""
    storage = str(tmp_path / "results")
    with one_driver(storage, "twice"):  # the first driver, still before its study.json
        assert study_run.main(["nmnist", "--synthetic", "--storage", storage, "--name", "twice", "--data-dir", str(tmp_path / "data")]) == 2
    assert "is being run by another process right now" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "results" / "twice").exists() and not (tmp_path / "data").exists()
