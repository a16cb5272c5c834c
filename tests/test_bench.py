"""The benchmark compares like with like: the tutorial-style reference computes what our model computes."""

from __future__ import annotations

import torch

from study.reference import ReferenceSCNN
from study.config import Hyperparams
from study.operations import framework_macs
from study.registry import build_model


def test_reference_network_computes_the_same_spikes_as_ours():
    torch.manual_seed(0)
    hp = Hyperparams(num_steps=6, threshold=0.5)
    ours = build_model("nmnist", "scnn", hp).eval()
    reference = ReferenceSCNN(ours, hp).eval()
    frames = (torch.rand(6, 4, 2, 34, 34) < 0.2).float()  # [T, B, C, H, W]
    with torch.no_grad():
        expected = ours.run(frames).scores
        assert expected.sum() > 0
        assert torch.equal(reference.run(frames).scores, expected)
        assert torch.equal(reference.run(frames).scores, expected)  # the reset between passes works


def test_framework_multiply_accumulates_of_the_spiking_cnn():
    model = build_model("nmnist", "scnn", Hyperparams(num_steps=2))
    frames = torch.zeros(2, 3, 2, 34, 34)
    per_sample_step = 12 * 34 * 34 * 2 * 25 + 32 * 17 * 17 * 12 * 25 + 10 * 2048  # conv1 + conv2 (padded) + linear
    assert framework_macs(model, frames) == per_sample_step * 2 * 3


CHILD_INTERRUPTED = """
import sys, time
from study.speed import in_fresh_process
print("ready", flush=True)
try:
    in_fresh_process(time.sleep, 60)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_ctrl_c_to_the_whole_group_ends_the_benchmarks_child_process_without_a_traceback(tmp_path):
    """study.bench measures one trial's epoch in a spawned process: Ctrl-C in a terminal reaches it too, and it
    used to print its own KeyboardInterrupt traceback (or keep the benchmark waiting for its epoch)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    started = subprocess.Popen(
        [sys.executable, "-c", CHILD_INTERRUPTED], cwd=Path(__file__).parents[1], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        assert started.stdout.readline() == "ready\n"
        children = Path(f"/proc/{started.pid}/task/{started.pid}/children")
        deadline = time.monotonic() + 60
        while len(children.read_text().split()) < 2 and time.monotonic() < deadline:  # multiprocessing's resource tracker, then the child
            time.sleep(0.1)
        assert children.read_text().split(), "the child process never started"
        time.sleep(0.5)  # the child is still importing torch: Ctrl-C there must not print a traceback either
        os.killpg(started.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, err = started.communicate(timeout=30)
    finally:
        if started.poll() is None:
            os.killpg(started.pid, signal.SIGKILL)
    assert "interrupted" in out and "Traceback" not in err, err
