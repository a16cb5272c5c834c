"""Speed measurements of the spiking CNN against the tutorial-style reference (`study.reference`).

Everything is measured in one run on one machine, so the ratios hold even where absolute times are
noisy: paired workloads alternate, after a warm-up each. Ours: events decoded once into a shared
memory-mapped store and binned into frames a batch at a time; stateless layers run once over all
time steps (channels-last), the neurons as one fused scan per layer. Both sides use the same weights
and the same loss. `python -m study.bench` and `python -m study.gpu_check` are the commands.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import platform
import resource
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from study.config import Hyperparams
from study.data.events import event_store
from study.data.frames import FrameDataset, FrameSpec
from study.data.sources import NMNIST_SOURCE, RawSplit
from study.data.synthetic import write_nmnist
from study.errors import UserError
from study.loop import make_loader, measure, train_one_epoch
from study.operations import framework_macs
from study.precision import autocast
from study.reference import ReferenceFrames, ReferenceSCNN, reference_epoch, reference_loader, time_major
from study.registry import build_model

BATCH = 64
EPOCH_REPEATS = 3  # whole epochs timed of each, after one warm-up epoch each
DEVICES = ("cpu", "cuda")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(work, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def seconds(work, repeats: int, device: torch.device) -> float:
    """Median wall time of `work()` after one warm-up call."""
    work()
    return statistics.median(timed(work, device) for _ in range(repeats))


def paired_seconds(ours, reference, repeats: int, device: torch.device, warm_up: bool = True) -> tuple[float, float]:
    """Median wall times of two workloads run in alternation, so a busy spell of the machine hits both."""
    if warm_up:
        ours(), reference()
    times = [(timed(ours, device), timed(reference, device)) for _ in range(repeats)]
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def matmul_flops(device: torch.device, size: int = 2048) -> float:
    """FLOP/s of a dense fp32 matrix product on `device`: the ceiling the training step is measured against."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    return 2 * size**3 / seconds(lambda: a @ b, 5, device)


def nmnist_root(data_dir: Path | None, workdir: Path, samples: int) -> tuple[Path, str]:
    """Real N-MNIST from `data_dir` when given, else synthetic data in the same on-disk format. A `data_dir`
    without N-MNIST is refused rather than measured on synthetic data in its place without a word."""
    if data_dir is None:
        write_nmnist(workdir, train_per_class=-(-samples // 10), test_per_class=1)
        return workdir, "synthetic N-MNIST-format data (no --data-dir given)"
    if not data_dir.is_dir():
        what = "does not exist" if not data_dir.exists() else "is not a folder"
        raise UserError(f"--data-dir {data_dir} {what}; give the folder that holds NMNIST/, or leave --data-dir out to measure on synthetic data.")
    if not (data_dir / "NMNIST").is_dir():
        raise UserError(
            f"--data-dir {data_dir} holds no N-MNIST (no {data_dir / 'NMNIST'} folder). Expected layout: "
            f"{NMNIST_SOURCE.layout} Or leave --data-dir out to measure on synthetic data in its format."
        )
    return data_dir, f"N-MNIST from {data_dir}"


def our_datasets(root: Path, cache: Path, train_idx: np.ndarray, val_idx: np.ndarray) -> tuple[FrameDataset, FrameDataset]:
    """Our training and validation sets at T=25, from the split's event store (decoded if absent)."""
    split = NMNIST_SOURCE.open(root, train=True)
    store = event_store(NMNIST_SOURCE, split, cache)
    return tuple(FrameDataset(store, idx, split.targets[idx], FrameSpec(25), NMNIST_SOURCE) for idx in (train_idx, val_idx))


def our_epoch(model, train_set, val_set, device, precision) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    to_input = partial(time_major, device=device)
    train_one_epoch(model, make_loader(train_set, BATCH, True), optimizer, to_input, device, precision)
    measure(model, make_loader(val_set, BATCH, False), to_input, device, precision)


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's VmHWM belongs to the address space, so unlike
    getrusage's ru_maxrss it does not carry over the parent's peak into a spawned child."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux; elsewhere approximate


def _trial_epoch(root, cache, train_idx, val_idx, device, precision, threads) -> float:
    """What one trial does per epoch, alone in a fresh process; returns that process's peak RSS."""
    torch.set_num_threads(threads)
    train_set, val_set = our_datasets(root, cache, train_idx, val_idx)
    our_epoch(build_model("nmnist", "scnn", Hyperparams(num_steps=25)).to(device), train_set, val_set, device, precision)
    return peak_rss_mb()


def trial_peak_rss_mb(*args) -> float:
    """Peak resident memory of `_trial_epoch(*args)` run in a fresh (spawned) process."""
    return in_fresh_process(_trial_epoch, *args)


def in_fresh_process(function: Callable, *args):
    """`function(*args)` run in a spawned process; its exception is raised here.

    Ctrl-C reaches the whole process group: the child starts with SIGINT ignored (inherited through exec, so
    even its imports cannot print a KeyboardInterrupt traceback), then dies of it quietly; whatever stops
    this process stops the child too."""
    context = multiprocessing.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sending, function, args), daemon=True)
    with _sigint_ignored():
        child.start()
    sending.close()
    try:
        outcome, value = receiving.recv()
        child.join(timeout=30)  # it has reported: let it exit on its own
    except EOFError:
        child.join()
        raise RuntimeError(f"the measuring process ended with exit status {child.exitcode} before it reported") from None
    finally:  # also on Ctrl-C here, or an error: the child does not outlive this call
        if child.is_alive():
            child.terminate()
            child.join()
        receiving.close()
    if outcome == "raised":
        raise value
    return value


def _child(sending, function: Callable, args: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends this process at once, without a word
    try:
        result = ("returned", function(*args))
    except Exception as error:
        result = ("raised", error)
    sending.send(result)
    sending.close()


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored for the block (main thread only): a child spawned in it inherits that."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def samples_per_second(loader: DataLoader) -> float:
    started, seen = time.perf_counter(), 0
    for inputs, _ in loader:
        seen += len(inputs)
    return seen / (time.perf_counter() - started)


def hardware(device: torch.device) -> dict:
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }


def training_step(model: nn.Module, frames: torch.Tensor, targets: torch.Tensor, precision: str, device: torch.device) -> Callable[[], None]:
    """One Adam step of `model` on a fixed batch, as a callable to time."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def once() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(precision, device):
            scores = model.run(frames).scores
        F.cross_entropy(scores.float(), targets).backward()
        optimizer.step()

    return once


def step_speed(num_steps: int, device: torch.device, precision: str, repeats: int, peak_flops: float) -> dict:
    """(a) the training step, ours and the reference, on the same batch and weights."""
    hp = Hyperparams(num_steps=num_steps)
    ours = build_model("nmnist", "scnn", hp).to(device)
    reference = ReferenceSCNN(ours, hp).to(device)
    frames = (torch.rand(num_steps, BATCH, 2, 34, 34, device=device) < 0.05).float()  # [T, B, C, H, W]
    targets = torch.randint(0, 10, (BATCH,), device=device)
    # the tutorial trains in fp32
    ours_s, reference_s = paired_seconds(
        training_step(ours, frames, targets, precision, device), training_step(reference, frames, targets, "fp32", device), repeats, device
    )
    flops = 2 * 3 * framework_macs(ours, frames)  # 2 FLOPs a MAC; backward ~ twice the forward
    return {
        "ours_samples_per_s": BATCH / ours_s,
        "reference_samples_per_s": BATCH / reference_s,
        "speedup": reference_s / ours_s,
        "ours_compute_efficiency": flops / ours_s / peak_flops,
        "reference_compute_efficiency": flops / reference_s / peak_flops,
    }


@dataclass
class BenchData:
    """The N-MNIST split the data path and the epochs are measured on, its event store already decoded."""

    root: Path
    description: str  # which data, in words: the table's title says it
    split: RawSplit
    cache: Path
    train_idx: np.ndarray
    val_idx: np.ndarray
    ours: tuple[FrameDataset, FrameDataset]  # training and validation sets read from the event store
    store_build_seconds: float


@contextlib.contextmanager
def bench_data(data_dir: Path | None, samples: tuple[int, int]) -> Iterator[BenchData]:
    """N-MNIST from `data_dir` or synthetic data in its format, opened and decoded into a temporary event store
    (timed) before anything else is measured: absent or damaged data stops the benchmark at once."""
    train_samples, val_samples = samples
    with tempfile.TemporaryDirectory() as workdir:
        root, description = nmnist_root(data_dir, Path(workdir), train_samples + val_samples)
        split, cache = NMNIST_SOURCE.open(root, train=True), Path(workdir) / "cache"
        indices = np.arange(train_samples + val_samples) % len(split.targets)
        train_idx, val_idx = indices[:train_samples], indices[train_samples:]
        started = time.perf_counter()
        ours = our_datasets(root, cache, train_idx, val_idx)
        yield BenchData(root, description, split, cache, train_idx, val_idx, ours, time.perf_counter() - started)


def measure_data_and_epochs(data: BenchData, device: torch.device, precision: str, consumption: float) -> dict:
    """(b) the data path and (d) whole epochs at T = 25, on `data`."""
    measured: dict = {"data": data.description, "store_build_seconds": data.store_build_seconds, "store_samples": len(data.split.targets)}
    ours_train, ours_val = data.ours
    spec = FrameSpec(25)
    reference_train, reference_val = ReferenceFrames(data.split, data.train_idx, spec), ReferenceFrames(data.split, data.val_idx, spec)

    loading = samples_per_second(make_loader(ours_train, BATCH, True))
    measured["data_path"] = {
        "ours_samples_per_s": loading,
        "reference_samples_per_s": samples_per_second(reference_loader(reference_train, BATCH, True)),
    }
    measured["loading_over_consumption"] = loading / consumption

    hp = Hyperparams(num_steps=25)
    ours = build_model("nmnist", "scnn", hp).to(device)
    reference = ReferenceSCNN(ours, hp).to(device)
    # Epochs include loading. One warm-up epoch each is left out (the first pays for page faults, thread
    # pools and allocator growth, which made --quick's single cold epoch vary 0.3x to 2x run to run), then
    # epochs alternate so a busy spell of the machine hits both.
    ours_epoch_s, reference_epoch_s = paired_seconds(
        partial(our_epoch, ours, ours_train, ours_val, device, precision),
        partial(reference_epoch, reference, reference_train, reference_val, BATCH, device),
        EPOCH_REPEATS,
        device,
    )
    measured["epoch"] = {"ours_seconds": ours_epoch_s, "reference_seconds": reference_epoch_s}
    measured["epoch_speedup"] = reference_epoch_s / ours_epoch_s
    measured["trial_peak_rss_mb"] = trial_peak_rss_mb(
        data.root, data.cache, data.train_idx, data.val_idx, device, precision, torch.get_num_threads()
    )
    return measured


def checked_device(text: str) -> torch.device:
    """--device as a torch device this machine has, or a UserError."""
    try:
        device = torch.device(text)
    except RuntimeError:
        device = None
    if device is None or device.type not in DEVICES:
        raise UserError(f"--device {text!r}: the benchmark runs on {' or '.join(DEVICES)} (e.g. cuda:0).")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {text}, but torch sees no CUDA device.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {text}, but torch sees {torch.cuda.device_count()} CUDA device(s).")
    return device
