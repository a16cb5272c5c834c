"""Shared fixtures: tiny data sets in the real on-disk formats, a Ray runtime, no network."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from study.data.synthetic import write_dvsgesture, write_mnist, write_nmnist


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """MNIST idx files, N-MNIST .bin files and DVS Gesture .npy files, written once per test run."""
    root = tmp_path_factory.mktemp("data")
    write_mnist(root, train_per_class=20, test_per_class=5)
    write_nmnist(root, train_per_class=20, test_per_class=5)
    write_dvsgesture(root, train_per_class=6, test_per_class=2)
    return root


@pytest.fixture
def no_network(monkeypatch):
    """Refuse every outgoing connection but loopback, as on a machine that cannot reach the dataset hosts."""
    real_connect = socket.socket.connect

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1")):
            return real_connect(sock, address)
        raise OSError(101, "Network is unreachable (blocked by the test)")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: (_ for _ in ()).throw(socket.gaierror("blocked by the test")))


@pytest.fixture(scope="session")
def ray_runtime():
    """One local Ray for the whole run (about 10 s to start); the CLI reuses a running Ray."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def smoke_experiments(tmp_path_factory, ray_runtime, data_root) -> Path:
    """Finished --smoke --synthetic studies of the CNN on MNIST and the spiking CNN on N-MNIST (~30 s each), the
    latter with --objective accuracy,energy.

    Returns the storage folder; the experiments are `mnist-cnn-synthetic` and `nmnist-scnn-synthetic`
    in it, their best models under the sibling `checkpoints/`.
    """
    from study.run import main

    workspace = tmp_path_factory.mktemp("analysis-studies")
    # The spiking CNN's study searches the Pareto front of accuracy and energy (the report draws it).
    for dataset, arch, objective in (("mnist", "cnn", "accuracy"), ("nmnist", "scnn", "accuracy,energy")):
        status = main([
            dataset, "--arch", arch, "--smoke", "--synthetic", "--objective", objective,
            "--data-dir", str(data_root),  # the synthetic data goes to data_root/synthetic
            "--storage", str(workspace / "results"),
            "--checkpoints-dir", str(workspace / "checkpoints"),
        ])
        assert status == 0, f"the {dataset} {arch} smoke study failed"
    return workspace / "results"
