"""The training loop, without Ray: data loaders, model inputs, optimizers, one epoch of training or measuring.

`train_trial` (study.trainable) drives these once per epoch; the tests, the benchmark, the final
test of a study and the analysis call them directly.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from study.config import Hyperparams, StudySettings
from study.data.datasets import final_test_set, train_val_datasets
from study.data.encoding import to_model_input
from study.data.frames import FrameSpec
from study.models.calibration import calibrate
from study.precision import autocast
from study.registry import ARCHITECTURES, DATASETS
from study.status import TrialStatus

OPTIMIZERS = {
    "adam": lambda params, hp: torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay),
    "sgd": lambda params, hp: torch.optim.SGD(params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay),
}

Adapter = Callable[[torch.Tensor], torch.Tensor]


def pick_device(given_gpu: bool | None = None) -> torch.device:
    """CUDA when there is one, else the CPU. `given_gpu`: inside a trial, whether Ray gave it a GPU
    (study.trainable asks Ray); without one the trial stays on the CPU even where CUDA is visible."""
    usable = torch.cuda.is_available() if given_gpu is None else given_gpu and torch.cuda.is_available()
    return torch.device("cuda" if usable else "cpu")


def input_adapter(dataset: str, arch: str, hp: Hyperparams) -> Adapter:
    """Loader batch -> model input for this dataset and architecture (see study.data.encoding)."""
    return partial(
        to_model_input,
        kind=DATASETS[dataset].source.kind,
        spiking=ARCHITECTURES[arch].spiking,
        num_steps=hp.num_steps,
        encoding=hp.encoding,
    )


def frame_spec(arch: str, hp: Hyperparams) -> FrameSpec:
    """How event data becomes this trial's frames: T time bins for spiking models, `time_bins` for the CNN."""
    return FrameSpec(n_time_bins=hp.num_steps if ARCHITECTURES[arch].spiking else hp.time_bins, size=hp.frame_size)


def trial_datasets(settings: StudySettings, hp: Hyperparams) -> tuple[Dataset, Dataset]:
    """The training and validation sets a trial of `settings` with `hp` trains and is ranked on."""
    return train_val_datasets(DATASETS[settings.dataset].source, settings, frame_spec(settings.arch, hp))


def trial_test_set(settings: StudySettings, hp: Hyperparams) -> Dataset:
    """The test split as a model with `hp` sees it (used once per study, for its best model)."""
    return final_test_set(DATASETS[settings.dataset].source, settings, frame_spec(settings.arch, hp))


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
    layer_rates: dict[str, float] = field(default_factory=dict)  # spiking models: spikes per neuron per step, by layer
    spike_rate: float | None = None  # the same over every recorded layer; None for a model that does not spike
    samples: int = 0  # how many the loss and accuracy are over
    predicted: torch.Tensor | None = None  # per sample, in the loader's order (measure(..., keep_predictions=True))
    targets: torch.Tensor | None = None

    @property
    def diverged(self) -> bool:
        return not math.isfinite(self.loss)


DIVERGED = EpochResult(math.nan, 0.0)


class SpikeTally:
    """Spikes and neuron updates per layer, summed over batches."""

    def __init__(self):
        self.spikes: dict[str, float] = {}
        self.updates: dict[str, int] = {}

    def add(self, output) -> None:
        for name, (emitted, updates) in output.spike_counts().items():
            self.spikes[name] = self.spikes.get(name, 0.0) + emitted
            self.updates[name] = self.updates.get(name, 0) + updates

    def rates(self) -> dict[str, float]:
        return {name: self.spikes[name] / self.updates[name] for name in self.spikes if self.updates[name]}

    def overall(self) -> float | None:
        updates = sum(self.updates.values())
        return sum(self.spikes.values()) / updates if updates else None


def _run_epoch(model, loader, adapt, device, optimizer=None, precision: str = "fp32", keep_predictions: bool = False) -> EpochResult:
    training = optimizer is not None
    model.train(training)
    total_loss, correct, seen, tally, kept = 0.0, 0, 0, SpikeTally(), ([], [])
    with torch.set_grad_enabled(training):
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            with autocast(precision, device):
                output = model.run(adapt(inputs))
            loss = F.cross_entropy(output.scores.float(), targets)
            loss_value = float(loss.detach())  # one device sync per batch: the running totals need it anyway
            if not math.isfinite(loss_value):
                return EpochResult(math.nan, correct / max(seen, 1))  # diverged: stop here
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            predicted = output.predictions()
            total_loss += loss_value * len(targets)
            correct += int((predicted == targets).sum())
            seen += len(targets)
            tally.add(output)
            if keep_predictions:
                kept[0].append(predicted.cpu())
                kept[1].append(targets.cpu())
    predictions = (torch.cat(kept[0]), torch.cat(kept[1])) if keep_predictions else (None, None)
    return EpochResult(total_loss / seen, correct / seen, tally.rates(), tally.overall(), seen, *predictions)


def train_one_epoch(model: nn.Module, loader: DataLoader, optimizer, adapt: Adapter, device, precision: str = "fp32") -> EpochResult:
    """One pass over `loader` with gradient steps; `precision` "fp32" or "bf16" (see study.precision)."""
    return _run_epoch(model, loader, adapt, device, optimizer, precision)


# Rate coding draws random spikes: every measurement draws them from this seed, so the same model scores
# the same on the same samples (validation epoch after epoch, the test split, a checkpoint tested again).
MEASURE_SEED = 0


@contextlib.contextmanager
def seeded(seed: int, device) -> Iterator[None]:
    """A block with torch's generators (the CPU's and `device`'s) seeded with `seed`, and put back as they were
    after it: what it draws leaves the training's random stream untouched."""
    devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def measure(model: nn.Module, loader: DataLoader, adapt: Adapter, device, precision: str = "fp32", keep_predictions: bool = False) -> EpochResult:
    """Loss, accuracy and spike rates on `loader`, without gradients and with seeded input encoding;
    with `keep_predictions`, every sample's predicted class and label too."""
    with seeded(MEASURE_SEED, device):
        return _run_epoch(model, loader, adapt, device, precision=precision, keep_predictions=keep_predictions)


# What every trial reports each epoch (plus `epoch`; for spiking models `spike_rate` and `spike_rate_<layer>`
# on the validation set; `diverged`, `silent` or `saturated` when it was).
EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "val_samples", "spike_rate", "epoch_seconds")
LAYER_RATE = "spike_rate_"  # prefix of a layer's spike rate: spike_rate_lif1, spike_rate_out, ...
# A layer firing at this share of its neurons' steps or more, over a whole epoch, carries no information.
SATURATED_RATE = 0.95
# A trial whose validation accuracy is still not above chance after this many epochs stops as stalled,
# when epochs are left to save and the validation set has enough samples per class to tell.
STALLED_AFTER = 2
STALL_CHECK_SAMPLES_PER_CLASS = 5
SIGNIFICANCE = 0.05  # of the one-sided binomial test that decides "above chance"


def above_chance(accuracy: float, samples: int, classes: int) -> bool:
    """Whether `accuracy` on `samples` is significantly above chance, 1 / `classes` (one-sided binomial test).

    The same rule on 13 validation recordings as on 600 digits: a small validation set needs a larger margin.
    """
    from scipy.stats import binomtest

    return samples > 0 and binomtest(round(accuracy * samples), samples, 1.0 / classes, alternative="greater").pvalue < SIGNIFICANCE


def stalled(epoch: int, val: EpochResult, classes: int, epochs_left: int) -> bool:
    """Still at chance after STALLED_AFTER epochs, on a validation set large enough to tell, with epochs left to save."""
    checkable = val.samples >= STALL_CHECK_SAMPLES_PER_CLASS * classes and epochs_left > 0
    return checkable and epoch == STALLED_AFTER and not above_chance(val.acc, val.samples, classes)


def firing_problem(layer_rates: dict[str, float]) -> TrialStatus | None:
    """SILENT when a layer emitted no spike at all, SATURATED when one fired at almost every step, else None."""

    if any(rate == 0 for rate in layer_rates.values()):
        return TrialStatus.SILENT
    if any(rate >= SATURATED_RATE for rate in layer_rates.values()):
        return TrialStatus.SATURATED
    return None


def epoch_metrics(
    epoch: int, train: EpochResult, val: EpochResult, seconds: float, classes: int | None = None, epochs_left: int = 0
) -> dict:
    """What a trial reports each epoch. With `classes` (as a trial calls it), whether it cannot learn: after
    epoch 1 silent or saturated (over its whole training epoch); after STALLED_AFTER epochs, with epochs
    left, still at chance. Each is reported as a metric named after its TrialStatus."""

    metrics = {
        "epoch": epoch,
        "train_loss": train.loss,
        "train_acc": train.acc,
        "val_loss": val.loss,
        "val_acc": val.acc,
        "val_samples": val.samples,
        "epoch_seconds": seconds,
    }
    if val.spike_rate is not None:
        metrics["spike_rate"] = val.spike_rate
        metrics |= {LAYER_RATE + name: rate for name, rate in val.layer_rates.items()}
    if train.diverged or val.diverged:
        metrics[TrialStatus.DIVERGED.value] = True
    elif classes is not None and epoch == 1 and (problem := firing_problem(train.layer_rates)):
        metrics[problem.value] = True
    elif classes is not None and stalled(epoch, val, classes, epochs_left):
        metrics[TrialStatus.STALLED.value] = True
    return metrics


def calibrate_on_first_batch(model: nn.Module, loader: DataLoader, adapt: Adapter, device, seed: int, events: bool) -> None:
    """Set a spiking model's input scale and layer gains from epoch 1's first training batch (study.models.calibration).

    `loader` is reseeded with `seed + 1`, the seed epoch 1 draws its order from, so the batch is the one training starts with.
    """
    loader.generator.manual_seed(seed + 1)
    inputs, _ = next(iter(loader))
    calibration = calibrate(model, adapt(inputs.to(device)), events=events)
    print(f"Calibrated on the first training batch: {calibration.describe()}", flush=True)
