"""Faults injected into real code paths: diverging and failing trials, damaged and contended data."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
import ray.cloudpickle
import torch
from ray import tune

import faults
from study.config import StudySettings
from study.data.events import event_store
from study.data.sources import DVSGESTURE_SOURCE, NMNIST_SOURCE
from study.errors import UserError
from study.outcome import searched, summarize, trial_records
from study.run import require_a_model
from study.trainable import train_trial
from study.tuning import TunePlan, build_tuner

SETTINGS = dict(max_epochs=3, train_limit=40, val_limit=20, test_limit=20)


def test_a_diverging_trial_stops_itself_and_keeps_its_metrics(data_root, monkeypatch):
    reports = []
    monkeypatch.setattr(tune, "report", lambda metrics, checkpoint: reports.append(metrics))
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    real_loss, calls = torch.nn.functional.cross_entropy, []

    def loss_that_explodes(scores, targets):  # finite for the 3 training batches of epoch 1, then NaN
        if torch.is_grad_enabled():
            calls.append(1)
        return real_loss(scores, targets) * (math.nan if len(calls) > 3 else 1.0)

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", loss_that_explodes)
    train_trial({"batch_size": 16}, StudySettings("nmnist", "cnn", data_root, max_epochs=5, train_limit=40, val_limit=20))
    assert [m["epoch"] for m in reports] == [1, 2]  # stopped itself at the first non-finite loss
    assert "diverged" not in reports[0] and reports[1]["diverged"] is True
    assert math.isnan(reports[1]["train_loss"]) and reports[1]["val_acc"] == 0.0

    result = SimpleNamespace(metrics={**reports[1], "training_iteration": 2, "trial_id": "t1"}, error=None, path="/x/t1", config={})
    row = trial_records([result], max_epochs=5)[0]
    assert row.status == "diverged" and row.last["train_loss"] is None  # NaN is not JSON
    json.loads(json.dumps(dataclasses.asdict(row)))


@pytest.mark.slow
def test_failing_trials_are_retried_from_their_checkpoint_and_the_study_finishes(data_root, ray_runtime, tmp_path):
    ray.cloudpickle.register_pickle_by_value(faults)
    settings = StudySettings("nmnist", "cnn", data_root, **SETTINGS)
    plan = TunePlan(name="faulty", storage=str(tmp_path / "results"), num_samples=2, gpus_per_trial=0, max_concurrent=2, max_failures=1)
    (tmp_path / "markers").mkdir()
    function = partial(faults.faulty_trial, marker_dir=str(tmp_path / "markers"))
    function.__name__ = "faulty_trial"
    results = build_tuner(settings, plan, function=function).fit()

    recovered = [r for r in results if r.error is None]
    failed = [r for r in results if r.error is not None]
    assert len(recovered) == 1 and len(failed) == 1
    # Retried from the checkpoint of epoch 1: every epoch ran once, none twice.
    assert recovered[0].metrics_dataframe["epoch"].tolist() == [1, 2, 3]
    assert "injected by the test" in str(failed[0].error)

    summary = summarize(settings, plan.experiment_path, searched(results, settings, (settings.arch,), tmp_path / "checkpoints" / plan.name))
    statuses = sorted(t.status for t in summary.trials)
    assert statuses == ["completed", "error"]
    assert summary.architectures[0].best.test_samples == 20 and (tmp_path / "checkpoints" / "faulty" / "cnn" / "best.pth").is_file()
    assert "injected by the test" in next(t.error for t in summary.trials if t.status == "error")


def test_a_study_where_no_trial_finishes_an_epoch_names_the_first_error(data_root, ray_runtime, tmp_path):
    ray.cloudpickle.register_pickle_by_value(faults)
    settings = StudySettings("nmnist", "cnn", data_root, **SETTINGS)
    plan = TunePlan(name="broken", storage=str(tmp_path / "results"), num_samples=2, gpus_per_trial=0, max_concurrent=2, max_failures=0)
    results = build_tuner(settings, plan, function=faults.broken_trial).fit()
    summary = summarize(settings, plan.experiment_path, searched(results, settings, (settings.arch,), tmp_path / "checkpoints" / plan.name))
    assert summary.architectures[0].best is None and [t.status for t in summary.trials] == ["error", "error"]
    with pytest.raises(UserError, match="No trial of 'broken' finished an epoch.*broken before the first epoch"):
        require_a_model(summary, "broken")
    assert not (tmp_path / "checkpoints" / "broken").exists()  # nothing to export


@pytest.fixture
def damaged_root(data_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(data_root / "NMNIST", root / "NMNIST")
    shutil.copytree(data_root / "DVSGesture", root / "DVSGesture")
    return root


def test_a_truncated_nmnist_file_is_named(damaged_root, tmp_path):
    split = NMNIST_SOURCE.open(damaged_root, train=True)
    damaged = Path(split.dataset.data[7])
    damaged.write_bytes(damaged.read_bytes()[:13])  # two events and a half
    with pytest.raises(UserError, match=f"Cannot read {damaged}"):
        event_store(NMNIST_SOURCE, split, tmp_path / "cache")
    leftovers = [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []  # no store, not even a partial one


def test_a_corrupt_dvsgesture_file_is_named(damaged_root, tmp_path):
    split = DVSGESTURE_SOURCE.open(damaged_root, train=False)
    damaged = Path(split.dataset.data[3])
    damaged.write_bytes(damaged.read_bytes()[:200])
    with pytest.raises(UserError, match=f"Cannot read {damaged}.*truncated or corrupt"):
        event_store(DVSGESTURE_SOURCE, split, tmp_path / "cache")


CONVERT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from study.data import events
    from study.data.sources import NMNIST_SOURCE

    root, cache, delay, peers = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    Path(cache, f"ready-{os.getpid()}").touch()  # start together, however long each took to import
    while len(list(Path(cache).glob("ready-*"))) < peers:
        time.sleep(0.05)
    real_read, real_decode = events._read, events._decode
    events._read = lambda *args: (time.sleep(delay), real_read(*args))[1]

    def logged_decode(*args):
        with open(os.path.join(cache, "conversions.log"), "a") as log:
            log.write(f"{os.getpid()}\\n")
        real_decode(*args)

    events._decode = logged_decode
    split = NMNIST_SOURCE.open(root, train=True)
    started = time.time()
    store = events.event_store(NMNIST_SOURCE, split, Path(cache))
    print(int(store.offsets[-1]), started, time.time())
    """
)


def start_conversion(data_root, cache: Path, delay: float, peers: int = 1) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CONVERT, str(data_root), str(cache), str(delay), str(peers)], stdout=subprocess.PIPE, text=True
    )


def test_parallel_trials_decode_the_events_once(data_root, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    first, second = start_conversion(data_root, cache, 0.04, peers=2), start_conversion(data_root, cache, 0.04, peers=2)  # 8 s each
    (total1, start1, end1), (total2, start2, end2) = (
        [float(word) for word in process.communicate(timeout=120)[0].split()] for process in (first, second)
    )
    assert max(start1, start2) < min(end1, end2)  # both asked for the cache while it was being made
    assert total1 == total2 > 0
    assert len((cache / "conversions.log").read_text().split()) == 1  # one converted, the other waited


def test_a_decoding_killed_mid_write_leaves_no_store_that_loads(data_root, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    victim = start_conversion(data_root, cache, 0.1)  # 200 samples x 0.1 s
    deadline = time.monotonic() + 60
    while not list(cache.glob("*.partial-*")):
        assert time.monotonic() < deadline, "the conversion wrote nothing within a minute"
        time.sleep(0.2)
    victim.kill()  # SIGKILL: no clean-up runs
    victim.wait()
    assert list(cache.glob("*.partial-*")) and not list(cache.glob("*.npy"))  # no offsets: no complete store
    survivor = start_conversion(data_root, cache, 0.0)
    assert float(survivor.communicate(timeout=120)[0].split()[0]) > 0
    assert len(list(cache.glob("*-offsets.npy"))) == 1 and not list(cache.glob("*.partial-*"))


def test_a_sigterm_landing_in_a_finalizer_ends_the_worker_without_a_traceback(tmp_path):
    # Ray's worker turns SIGTERM into SystemExit. Here the signal arrives while a weakref callback
    # runs, the race that once put a traceback into the log of a study stopped with SIGTERM.
    script = textwrap.dedent("""
        import os, signal, weakref

        def like_rays_worker(signum, frame):
            raise SystemExit(1)

        signal.signal(signal.SIGTERM, like_rays_worker)
        if os.environ.get("QUIET") == "1":
            from study.worker_signals import exit_quietly_on_sigterm
            exit_quietly_on_sigterm()

        class Resource:
            pass

        def finalizer(ref):
            os.kill(os.getpid(), signal.SIGTERM)
            sum(range(1000))  # the handler runs here, inside the callback

        resource = Resource()
        watch = weakref.ref(resource, finalizer)
        del resource
        print("kept running")
    """)
    runs = {
        quiet: subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env={**os.environ, "QUIET": quiet}, timeout=60)
        for quiet in ("0", "1")
    }
    assert "Traceback" in runs["0"].stderr and "kept running" in runs["0"].stdout  # the race is real
    assert runs["1"].returncode == 1 and runs["1"].stdout == "" and runs["1"].stderr == ""


def test_a_trial_whose_named_checkpoint_was_deleted_continues_from_an_older_one(data_root, tmp_path, monkeypatch):
    # Ray deleted checkpoint_000002 (a worse one) after the study last saved its state, then the driver died.
    settings = StudySettings("nmnist", "cnn", data_root, max_epochs=3, train_limit=40, val_limit=20)
    trial = tmp_path / "trial_x"
    reports = []

    def keep(metrics, checkpoint):
        reports.append(metrics["epoch"])
        shutil.copytree(checkpoint.path, trial / f"checkpoint_{len(reports) - 1:06d}")

    monkeypatch.setattr(tune, "report", keep)
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    train_trial({"batch_size": 16}, settings)  # checkpoints of epochs 1, 2 and 3
    shutil.rmtree(trial / "checkpoint_000001")

    def restored_with(named: str) -> list[int]:
        reports.clear()
        monkeypatch.setattr(tune, "report", lambda metrics, checkpoint: reports.append(metrics["epoch"]))
        monkeypatch.setattr(tune, "get_checkpoint", lambda: tune.Checkpoint(str(trial / named)))
        train_trial({"batch_size": 16}, settings)
        return reports

    assert restored_with("checkpoint_000002") == []  # present: the trial had finished
    assert restored_with("checkpoint_000001") == [2, 3]  # gone: from epoch 1's, not from the newer one
    shutil.rmtree(trial / "checkpoint_000000")
    assert restored_with("checkpoint_000001") == [1, 2, 3]  # nothing older left: from the start
