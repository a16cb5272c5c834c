"""The trainable: a plain function Ray Tune calls once per trial, built from small parts.

`train_one_epoch` and `evaluate` are usable without Ray (the tests call them directly);
`train_trial` adds the Ray boundary: config dict -> Hyperparams, one report per epoch
(ASHA's time unit) with a checkpoint, and resumption from the last checkpoint.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from study.checkpoint import read_checkpoint, save_checkpoint
from study.config import Hyperparams, StudySettings
from study.data import SampleRequest, data_root, train_val_datasets
from study.data.encoding import to_model_input
from study.data.frames import FrameSpec
from study.precision import autocast, resolve
from study.registry import ARCHITECTURES, DATASETS, build_model

CHECKPOINT_FILE = "checkpoint.pth"

OPTIMIZERS = {
    "adam": lambda params, hp: torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay),
    "sgd": lambda params, hp: torch.optim.SGD(params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay),
}

Adapter = Callable[[torch.Tensor], torch.Tensor]


def pick_device(in_trial: bool = False) -> torch.device:
    """CUDA when there is one (inside a trial: only when Ray gave the trial a GPU), else the CPU.

    Ray 2.60 no longer hides GPUs from trials that asked for none, so a trial checks its own share.
    """
    if in_trial:
        import ray

        # Outside a Ray worker (a test calling train_trial) there is no share to ask for; asking
        # would start a Ray runtime as a side effect.
        gpus = ray.get_gpu_ids() if ray.is_initialized() else []
        return torch.device("cuda" if gpus and torch.cuda.is_available() else "cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def input_adapter(dataset: str, arch: str, hp: Hyperparams) -> Adapter:
    """Loader batch -> model input for this dataset and architecture (see study.data.encoding)."""
    return partial(
        to_model_input,
        kind=DATASETS[dataset].source.kind,
        spiking=ARCHITECTURES[arch].spiking,
        num_steps=hp.num_steps,
        encoding=hp.encoding,
    )


def sample_request(settings: StudySettings, hp: Hyperparams) -> SampleRequest:
    """Which samples and frames this trial needs. The CNN sees event frames summed, so one time bin."""
    time_bins = hp.num_steps if ARCHITECTURES[settings.arch].spiking else 1
    return SampleRequest(
        frames=FrameSpec(n_time_bins=time_bins, size=hp.frame_size),
        train_limit=settings.train_limit,
        val_limit=settings.val_limit,
        test_limit=settings.test_limit,
        val_fraction=settings.val_fraction,
    )


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int = 0, workers: int = 0) -> DataLoader:
    """Batches of `dataset`, fetched whole: `dataset[list of indices]` returns the batch (event frames are
    binned a batch at a time, MNIST's tensors are sliced), so nothing is stacked sample by sample.
    `workers` processes load ahead of the step (0: in this process). Reseed `loader.generator` to
    replay an order."""
    generator = torch.Generator().manual_seed(seed)
    order = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return DataLoader(
        dataset,
        sampler=BatchSampler(order, batch_size, drop_last=False),
        batch_size=None,  # the sampler hands out whole batches
        generator=generator,
        num_workers=workers,
        persistent_workers=workers > 0,
    )


@dataclass(frozen=True)
class EpochResult:
    loss: float
    acc: float
    spike_rate: float | None  # spikes per neuron per time step, spiking models only

    @property
    def diverged(self) -> bool:
        return not math.isfinite(self.loss)


def _run_epoch(model, loader, adapt, device, optimizer=None, precision: str = "fp32") -> EpochResult:
    training = optimizer is not None
    model.train(training)
    total_loss, correct, seen, spikes, updates = 0.0, 0, 0, 0.0, 0
    with torch.set_grad_enabled(training):
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            with autocast(precision, device):
                output = model.run(adapt(inputs))
            loss = F.cross_entropy(output.scores.float(), targets)
            loss_value = float(loss.detach())  # one device sync per batch: the running totals need it anyway
            if not math.isfinite(loss_value):
                return EpochResult(math.nan, correct / max(seen, 1), None)  # diverged: stop here
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            total_loss += loss_value * len(targets)
            correct += int((output.scores.argmax(1) == targets).sum())
            seen += len(targets)
            emitted, neuron_updates = output.spike_totals()
            spikes, updates = spikes + emitted, updates + neuron_updates
    return EpochResult(total_loss / seen, correct / seen, spikes / updates if updates else None)


def train_one_epoch(model: nn.Module, loader: DataLoader, optimizer, adapt: Adapter, device, precision: str = "fp32") -> EpochResult:
    """One pass over `loader` with gradient steps; `precision` "fp32" or "bf16" (see study.precision)."""
    return _run_epoch(model, loader, adapt, device, optimizer, precision)


def evaluate(model: nn.Module, loader: DataLoader, adapt: Adapter, device, precision: str = "fp32") -> EpochResult:
    """Loss, accuracy and spike rate on `loader`, without gradients."""
    return _run_epoch(model, loader, adapt, device, precision=precision)


# What every trial reports each epoch (plus `epoch`, `spike_rate` for spiking models, `diverged` when it did).
EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "spike_rate", "epoch_seconds")


def epoch_metrics(epoch: int, train: EpochResult, val: EpochResult, seconds: float) -> dict:
    """What a trial reports each epoch."""
    metrics = {
        "epoch": epoch,
        "train_loss": train.loss,
        "train_acc": train.acc,
        "val_loss": val.loss,
        "val_acc": val.acc,
        "epoch_seconds": seconds,
    }
    if val.spike_rate is not None:
        metrics["spike_rate"] = val.spike_rate
    if train.diverged or val.diverged:
        metrics["diverged"] = True
    return metrics


def resume_state(checkpoint) -> dict | None:
    """The checkpoint a restored trial continues from: the one Ray names, else the newest older one left.

    Ray deletes a trial's worst checkpoints as better ones arrive, but saves the experiment state only
    every few seconds. A study killed in between is restored with a checkpoint that no longer exists;
    the trial then repeats the epochs since an older checkpoint (or since the start) instead of failing.
    Trials report their own `epoch`, which the scheduler and the summary count, so the repeat is harmless.
    """
    if checkpoint is None:
        return None
    from pyarrow import fs
    from ray import tune

    files = checkpoint.filesystem
    named = PurePosixPath(checkpoint.path)
    if files.get_file_info(str(named / CHECKPOINT_FILE)).type == fs.FileType.File:
        return _read_trial_checkpoint(checkpoint)
    # Ray names checkpoint folders checkpoint_000000, checkpoint_000001, ...: by name is by age.
    siblings = files.get_file_info(fs.FileSelector(str(named.parent), allow_not_found=True))
    older = sorted(
        info.path for info in siblings
        if info.type == fs.FileType.Directory and info.base_name.startswith("checkpoint_") and info.base_name < named.name
    )
    gone = f"{named.name} of this trial was deleted after the study last saved its state"
    for folder in reversed(older):
        if files.get_file_info(f"{folder}/{CHECKPOINT_FILE}").type == fs.FileType.File:
            print(f"{gone}; continuing from {PurePosixPath(folder).name}.", flush=True)
            return _read_trial_checkpoint(tune.Checkpoint(folder, filesystem=files))
    print(f"{gone}; starting the trial again.", flush=True)
    return None


def _read_trial_checkpoint(checkpoint) -> dict:
    with checkpoint.as_directory() as folder:
        return read_checkpoint(Path(folder) / CHECKPOINT_FILE)


def train_trial(config: dict, settings: StudySettings) -> None:
    """Ray Tune function trainable: trains up to `settings.max_epochs`, reporting once per epoch."""
    from ray import tune  # imported here so the rest of this module works without a Ray runtime

    hp = Hyperparams.from_dict(config)
    torch.set_num_threads(settings.torch_threads)
    torch.manual_seed(settings.seed)
    device = pick_device(in_trial=True)
    precision = resolve(settings.precision, device)

    root = data_root(settings.data_dir, settings.synthetic)
    train_set, val_set = train_val_datasets(DATASETS[settings.dataset].source, root, sample_request(settings, hp))
    workers = settings.loader_workers
    train_loader = make_loader(train_set, hp.batch_size, shuffle=True, workers=workers)  # reseeded every epoch below
    val_loader = make_loader(val_set, hp.batch_size, shuffle=False, workers=workers)
    adapt = input_adapter(settings.dataset, settings.arch, hp)

    model = build_model(settings.dataset, settings.arch, hp).to(device)
    optimizer = OPTIMIZERS[hp.optimizer](model.parameters(), hp)
    first_epoch = 1
    if (state := resume_state(tune.get_checkpoint())) is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        first_epoch = state["epoch"] + 1

    for epoch in range(first_epoch, settings.max_epochs + 1):
        started = time.perf_counter()
        train_loader.generator.manual_seed(settings.seed + epoch)  # the same order whether resumed or not
        train = train_one_epoch(model, train_loader, optimizer, adapt, device, precision)
        # A diverged network has nothing left to learn or to validate: report it and stop the trial.
        val = evaluate(model, val_loader, adapt, device, precision) if not train.diverged else EpochResult(math.nan, 0.0, None)
        metrics = epoch_metrics(epoch, train, val, time.perf_counter() - started)
        with tempfile.TemporaryDirectory() as folder:
            save_checkpoint(
                Path(folder) / CHECKPOINT_FILE,
                model,
                dataset=settings.dataset,
                arch=settings.arch,
                hp=hp,
                optimizer=optimizer.state_dict(),
                epoch=epoch,
                metrics=metrics,
                synthetic=settings.synthetic,
            )
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        if metrics.get("diverged"):
            return
