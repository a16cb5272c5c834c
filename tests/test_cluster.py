"""A real Ray cluster: a head started with `ray start --head` on loopback, and a study sent to it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from study.cluster import auth_token_available

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def ray_head():
    """`ray start --head --block` on 127.0.0.1 in a short temporary folder (Ray's socket paths are length-limited)."""
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="rayhead", dir="/tmp")
    head = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
            "--node-ip-address=127.0.0.1", f"--port={port}", f"--temp-dir={temp_dir}",
            "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    # The head uses token authentication when a token file exists; so must the status probe.
    probe_env = {**os.environ, **({"RAY_AUTH_MODE": "token"} if auth_token_available() else {})}
    try:
        deadline = time.monotonic() + 90
        while subprocess.run(
            [str(Path(sys.executable).parent / "ray"), "status", f"--address={address}"], capture_output=True, env=probe_env
        ).returncode != 0:
            assert head.poll() is None, head.stdout.read()
            assert time.monotonic() < deadline, "the Ray head did not come up"
            time.sleep(1)
        yield address
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops the head's processes on SIGTERM
        try:
            head.wait(timeout=60)
        finally:
            try:
                os.killpg(head.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            shutil.rmtree(temp_dir, ignore_errors=True)


def test_a_smoke_study_runs_on_an_existing_cluster(ray_head, tmp_path):
    finished = subprocess.run(
        [
            sys.executable, "-m", "study.run", "nmnist", "--arch", "scnn", "--repeats", "0", "--smoke", "--synthetic", "--address", ray_head,
            "--storage", str(tmp_path / "results"), "--data-dir", str(tmp_path / "data"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    port = ray_head.rsplit(":", 1)[1]
    assert re.search(rf"Connecting to existing Ray cluster at address: [\d.]+:{port}", finished.stderr)
    summary = json.loads((tmp_path / "results" / "nmnist-scnn-synthetic" / "summary.json").read_text())
    [architecture] = summary["architectures"]
    assert len(architecture["trials"]) == 2 and architecture["best"]["test_acc"] is not None
    assert (tmp_path / "checkpoints" / "nmnist-scnn-synthetic" / "scnn" / "best.pth").is_file()
