"""`python -m study.bench`: this project's spiking CNN against an snnTorch-tutorial-style reference.

Everything is measured in one run on one machine, so the ratios hold even where absolute times
are noisy. The reference follows snnTorch tutorial 7: `tonic.transforms.ToFrame` per sample in the
data loader, and the whole network (`snn.Leaky(init_hidden=True)` layers) called once per time step.
Ours: events decoded once into a shared memory-mapped store and binned into frames a batch at a
time; stateless layers run once over all time steps (channels-last), the neurons as one fused
scan per layer. Both use the same weights and the same loss.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import snntorch as snn
import torch
import torch.nn.functional as F
from snntorch import utils
from torch import nn
from torch.utils.data import DataLoader, Dataset

from study import search_bench
from study.cli import count, print_error, seed
from study.config import Hyperparams
from study.data.events import event_store
from study.data.frames import FrameDataset, FrameSpec, frame_transform
from study.data.sources import NMNIST_SOURCE, RawSplit
from study.data.synthetic import write_nmnist
from study.errors import UserError
from study.files import write_atomically
from study.models.common import Output, class_scores
from study.models.lif_scan import SURROGATES
from study.operations import framework_macs
from study.precision import PRECISIONS, autocast, resolve
from study.registry import build_model
from study.loop import make_loader, measure, train_one_epoch
from study.writable import check_writable_file

BATCH = 64
EPOCH_REPEATS = 3  # whole epochs timed of each, after one warm-up epoch each
DEVICES = ("cpu", "cuda")


class ReferenceSCNN(nn.Module):
    """Tutorial 7's network: our layers and weights (plain NCHW, fp32), `snn.Leaky(init_hidden=True)` between them."""

    spiking = True

    def __init__(self, ours: nn.Module, hp: Hyperparams):
        super().__init__()
        if hp.batch_norm or hp.readout != "spikes":
            raise ValueError("the tutorial-style reference has no BatchNorm over time and reads out spike counts")

        def neuron(**extra) -> snn.Leaky:
            surrogate = SURROGATES[hp.surrogate](slope=hp.slope)  # snnTorch's own function, as in the tutorial
            return snn.Leaky(beta=hp.beta, threshold=hp.threshold, spike_grad=surrogate, init_hidden=True, **extra)

        layers = [layer for block in ours.blocks for layer in (copy.deepcopy(block.conv), copy.deepcopy(block.pool), neuron())]
        layers += [copy.deepcopy(ours.classifier), neuron(output=True)]
        self.net = nn.Sequential(*layers).to(memory_format=torch.contiguous_format)
        self.input_scale = float(ours.input_scale)
        self.num_classes = ours.output_layer.num_classes

    def run(self, frames: torch.Tensor) -> Output:
        """The tutorial's forward pass: reset, then the whole network once per step of `[T, B, ...]`."""
        utils.reset(self.net)
        spikes = []
        for step in frames * self.input_scale:
            spk_out, _ = self.net(step)
            spikes.append(spk_out)
        return Output(class_scores(torch.stack(spikes), self.num_classes))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.run(frames).scores


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
    """Real N-MNIST from `data_dir` when it is there, else synthetic data in the same on-disk format."""
    if data_dir is not None and (data_dir / "NMNIST" / "Train").is_dir():
        return data_dir, f"N-MNIST from {data_dir}"
    write_nmnist(workdir, train_per_class=-(-samples // 10), test_per_class=1)
    return workdir, "synthetic N-MNIST-format data (no N-MNIST under --data-dir)"


def our_datasets(root: Path, cache: Path, train_idx: np.ndarray, val_idx: np.ndarray) -> tuple[FrameDataset, FrameDataset]:
    """Our training and validation sets at T=25, from the split's event store (decoded if absent)."""
    split = NMNIST_SOURCE.open(root, train=True)
    store = event_store(NMNIST_SOURCE, split, cache)
    return tuple(FrameDataset(store, idx, split.targets[idx], FrameSpec(25), NMNIST_SOURCE) for idx in (train_idx, val_idx))


def time_major(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    return batch.to(device).transpose(0, 1)  # [B, T, P, H, W] -> [T, B, P, H, W]


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
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_trial_epoch, *args).result()


class ReferenceFrames(torch.utils.data.Dataset):
    """Tutorial style: each sample's events are read and turned into frames by tonic every time."""

    def __init__(self, split: RawSplit, indices: np.ndarray, spec: FrameSpec):
        self.split, self.indices, self.transform = split, indices, frame_transform(NMNIST_SOURCE, spec)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        events, label = self.split.dataset[int(self.indices[i])]
        return torch.from_numpy(self.transform(events).astype(np.float32)), label


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


def reference_loader(dataset: Dataset, shuffle: bool) -> DataLoader:
    """The tutorial's loader: samples fetched and stacked one by one."""
    return DataLoader(dataset, batch_size=BATCH, shuffle=shuffle)


def reference_epoch(model: nn.Module, train_set: Dataset, val_set: Dataset, device: torch.device) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for inputs, targets in reference_loader(train_set, True):
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model.run(time_major(inputs, device)).scores, targets.to(device)).backward()
        optimizer.step()
    with torch.no_grad():
        for inputs, _ in reference_loader(val_set, False):
            model.run(time_major(inputs, device))


def data_and_epochs(args: argparse.Namespace, device: torch.device, precision: str, samples: tuple[int, int], consumption: float) -> dict:
    """(b) the data path and (d) whole epochs at T = 25, on N-MNIST from --data-dir or synthetic data in its format."""
    train_samples, val_samples = samples
    measured: dict = {}
    with tempfile.TemporaryDirectory() as workdir:
        root, measured["data"] = nmnist_root(args.data_dir, Path(workdir), train_samples + val_samples)
        split, cache = NMNIST_SOURCE.open(root, train=True), Path(workdir) / "cache"
        indices = np.arange(train_samples + val_samples) % len(split.targets)
        train_idx, val_idx = indices[:train_samples], indices[train_samples:]
        started = time.perf_counter()
        ours_train, ours_val = our_datasets(root, cache, train_idx, val_idx)
        measured["store_build_seconds"] = time.perf_counter() - started
        measured["store_samples"] = len(split.targets)
        spec = FrameSpec(25)
        reference_train, reference_val = ReferenceFrames(split, train_idx, spec), ReferenceFrames(split, val_idx, spec)

        loading = samples_per_second(make_loader(ours_train, BATCH, True))
        measured["data_path"] = {
            "ours_samples_per_s": loading,
            "reference_samples_per_s": samples_per_second(reference_loader(reference_train, True)),
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
            partial(reference_epoch, reference, reference_train, reference_val, device),
            EPOCH_REPEATS,
            device,
        )
        measured["epoch"] = {"ours_seconds": ours_epoch_s, "reference_seconds": reference_epoch_s}
        measured["epoch_speedup"] = reference_epoch_s / ours_epoch_s
        measured["trial_peak_rss_mb"] = trial_peak_rss_mb(root, cache, train_idx, val_idx, device, precision, torch.get_num_threads())
    return measured


def run(args: argparse.Namespace) -> dict:
    """Every measurement of the benchmark, as the JSON record it writes."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    repeats = 3 if args.quick else 5
    samples = (4 * BATCH, BATCH) if args.quick else (16 * BATCH, 4 * BATCH)  # (training, validation)
    precision = resolve(args.precision, device)
    measured: dict = {
        "settings": {"batch": BATCH, "device": str(device), "quick": args.quick, "train_samples": samples[0], "precision": precision},
        "hardware": hardware(device),
    }
    peak_flops = matmul_flops(device)
    measured["matmul_gflops"] = peak_flops / 1e9
    for num_steps in (25,) if args.quick else (25, 100):
        measured[f"step_T{num_steps}"] = step_speed(num_steps, device, precision, repeats, peak_flops)
    measured["step_speedup"] = measured["step_T25"]["speedup"]
    measured["compute_efficiency"] = measured["step_T25"]["ours_compute_efficiency"]
    measured |= data_and_epochs(args, device, precision, samples, consumption=measured["step_T25"]["ours_samples_per_s"])
    measured["peak_rss_mb"] = peak_rss_mb()
    if device.type == "cuda":
        measured["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return measured


GOALS = {"epoch_speedup": 2.0, "loading_over_consumption": 5.0}


def table(measured: dict) -> str:
    settings = measured["settings"]
    lines = [f"snn-study benchmark on {settings['device']} ({measured['data']}), batch {BATCH}, ours in {settings['precision']}"]
    lines.append(f"  dense fp32 matmul: {measured['matmul_gflops']:.0f} GFLOP/s")
    for key in sorted(k for k in measured if k.startswith("step_T")):
        step = measured[key]
        lines.append(
            f"  training step {key[5:]}: ours {step['ours_samples_per_s']:.0f} samples/s, reference "
            f"{step['reference_samples_per_s']:.0f} samples/s, speedup {step['speedup']:.2f}x, compute efficiency "
            f"{step['ours_compute_efficiency']:.1%} vs {step['reference_compute_efficiency']:.1%}"
        )
    lines.append(
        f"  data path: ours {measured['data_path']['ours_samples_per_s']:.0f} samples/s (event store of "
        f"{measured['store_samples']} samples decoded once in {measured['store_build_seconds']:.1f} s), reference "
        f"{measured['data_path']['reference_samples_per_s']:.0f} samples/s"
    )
    lines.append(f"  epoch (loading + training + validation): ours {measured['epoch']['ours_seconds']:.1f} s, reference {measured['epoch']['reference_seconds']:.1f} s")
    for key, goal in GOALS.items():
        verdict = "met" if measured[key] >= goal else f"missed by {goal / measured[key]:.2f}x"
        lines.append(f"  {key}: {measured[key]:.2f} (goal {goal:g}: {verdict})")
    lines.append(
        f"  step_speedup {measured['step_speedup']:.2f}; peak RSS: one trial's epoch in its own process "
        f"{measured['trial_peak_rss_mb']:.0f} MB (goal under 3000), this benchmark {measured['peak_rss_mb']:.0f} MB"
    )
    return "\n".join(lines)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m study.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--quick", action="store_true", help="T=25 only and fewer samples: about a minute on 2 CPU cores")
    parser.add_argument("--data-dir", type=Path, help="folder holding NMNIST/ (else synthetic data in its format)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="our step's precision, as in a study (default auto: bf16 where native, else fp32)")
    parser.add_argument("--threads", type=count, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, help="where to write the JSON report (default ./bench.json; --search: ./bench-search.json)")
    search = parser.add_argument_group("search quality (--search): short studies, see study.search_bench")
    search.add_argument("--search", action="store_true", help="measure search quality instead of speed")
    search.add_argument("--trials", type=count, default=4, help="trials per study (default 4)")
    search.add_argument("--epochs", type=count, default=10, help="epochs per trial at most (default 10)")
    search.add_argument("--seed", type=seed, default=0, help="the studies' --seed (default 0)")
    search.add_argument("--archs", default=",".join(search_bench.ALL_ARCHS), help="comma-separated architectures (default all)")
    search.add_argument("--data", default=",".join(search_bench.ALL_DATA), help=f"comma-separated data sets (default all: {', '.join(search_bench.ALL_DATA)})")
    args = parser.parse_args(argv)
    try:
        out = args.out or Path("bench-search.json" if args.search else "bench.json")
        check_writable_file(out, "--out")  # before minutes of measuring
        if args.search:
            archs, data = args.archs.split(","), args.data.split(",")
            unknown = sorted(set(archs) - set(search_bench.ALL_ARCHS)) + sorted(set(data) - set(search_bench.ALL_DATA))
            if unknown:
                raise UserError(f"Unknown architecture or data set {', '.join(unknown)}; valid: {', '.join(search_bench.ALL_ARCHS + search_bench.ALL_DATA)}.")
            return search_bench.main_search(args.trials, args.epochs, args.seed, archs, data, out)
        args.device = str(checked_device(args.device))
    except UserError as error:
        return print_error(error)
    if args.threads:
        torch.set_num_threads(args.threads)
    measured = run(args)
    print(table(measured), flush=True)  # the figures reach the user even if writing the file fails
    try:
        write_atomically(out, json.dumps(measured, indent=2) + "\n")
    except OSError as error:
        return print_error(UserError(f"--out {out} could not be written ({error}); the figures are printed above."))
    print(f"Written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
