"""A checkpoint's model together with a few of its own test samples, ready for the model-level figures.

The data folder is the one the study used: a best checkpoint's `config.json` points at its trial
checkpoint inside the experiment folder, whose `study.json` records `settings.data_dir`.
The command line of the per-checkpoint commands is analysis.checkpoint_cli's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import nn

from study.checkpoint import load_model
from study.config import Hyperparams
from study.errors import UserError
from study.final_test import checkpoint_test_split
from study.loop import input_adapter
from study.models import Output
from study.naming import model_on_data
from study.origin import checkpoint_data_dir
from study.registry import DATASETS, DatasetAndArch

# Rate coding draws random spikes: the same seed gives the same figures on every run.
ENCODING_SEED = 0
MAX_STEP_COLUMNS = 16  # time steps shown side by side in a figure
SEQUENCE_SAMPLES = 4  # samples followed over time in a figure or an animation


@dataclass
class Loaded(DatasetAndArch):
    """A model in eval mode on the CPU, its checkpoint and `count` class-balanced test samples (sorted by label)."""

    model: nn.Module
    payload: dict  # the checkpoint dict (dataset, arch, hyperparams, ...)
    hp: Hyperparams
    inputs: torch.Tensor  # model input: [T, B, C, H, W] for spiking models, [B, C, H, W] for the CNN
    labels: torch.Tensor  # [B]
    frames: torch.Tensor  # for a human, as the loader gives them: images [B, C, H, W] (MNIST: bytes) or event frames [B, T, C, H, W]
    class_names: list[str]

    @cached_property
    def output(self) -> Output:
        """The model's forward pass over `inputs`, computed once for every figure that needs it."""
        with torch.no_grad():
            return self.model.run(self.inputs)

    @property
    def dataset(self) -> str:
        return self.payload["dataset"]

    @property
    def arch(self) -> str:
        return self.payload["arch"]

    @property
    def where(self) -> str:
        """'scnn on nmnist', '(synthetic data)' added when it is: what every figure's title and caption name."""
        return model_on_data(self.arch, self.dataset, bool(self.payload.get("synthetic")))


def load_with_samples(checkpoint: Path, count: int, data_dir: Path | None = None) -> Loaded:
    """The checkpoint's model and `count` class-balanced samples of its dataset's test split.

    `data_dir` None: the study's own data folder when it can be found, else ./data. Synthetic
    checkpoints read (and if needed regenerate) the synthetic folder, as `study.evaluate` does.
    """
    model, payload = load_model(checkpoint, "cpu")
    settings, hp, test_set = checkpoint_test_split(payload, checkpoint_data_dir(checkpoint, data_dir), count)
    if len(test_set) == 0:
        raise UserError(f"The {settings.dataset} test split under {settings.data_dir} holds no samples.")
    batch, labels = test_set[list(range(len(test_set)))]  # one batch: [B, C, H, W] bytes or [B, T, P, H, W] counts
    order = torch.argsort(labels, stable=True)  # grouped by class: grids read row by row
    batch, labels = batch[order], labels[order]
    with torch.random.fork_rng():
        torch.manual_seed(ENCODING_SEED)
        inputs = input_adapter(settings.dataset, settings.arch, hp)(batch)
    return Loaded(model, payload, hp, inputs, labels, batch, list(DATASETS[settings.dataset].source.classes))


def short_name(class_name: str) -> str:
    """A label that fits above a thumbnail: torchvision's '3 - three' -> '3'; other names unchanged."""
    return class_name.split(" - ")[0]


def scaled_per_sample(values: torch.Tensor, log: bool = False, from_minimum: bool = False) -> torch.Tensor:
    """Each sample (the first dimension) divided by its own maximum, so it spans [0, 1]: with `log`, of
    log(1 + values) (event counts: busy pixels then do not hide the rest); with `from_minimum`, after
    subtracting its own minimum."""
    values = values.float().log1p() if log else values.float()
    per_sample = (-1, *[1] * (values.dim() - 1))
    if from_minimum:
        values = values - values.flatten(1).min(1).values.view(per_sample)
    return values / values.flatten(1).max(1).values.clamp_min(1e-12).view(per_sample)


def _scaled(pictures: torch.Tensor, events: bool) -> np.ndarray:
    """Pictures for a human: per sample to [0, 1], event counts on a log scale."""
    return scaled_per_sample(pictures, log=events, from_minimum=True).numpy()


def pictures(loaded: Loaded) -> np.ndarray:
    """One grey image per sample, [B, H, W] in [0, 1]: the image, or every event of the sample summed."""
    frames = loaded.frames.sum(1) if loaded.frames.dim() == 5 else loaded.frames  # [B, C, H, W]
    return _scaled(frames.sum(1), loaded.events)


def step_pictures(loaded: Loaded) -> np.ndarray:
    """What a spiking model saw at each step, [B, T, H, W] in [0, 1] (one scale per sample)."""
    steps = loaded.inputs.transpose(0, 1).sum(2)  # [T, B, C, H, W] -> [B, T, H, W]
    return _scaled(steps, loaded.events)


def step_columns(steps: int) -> list[int]:
    """Every step, or MAX_STEP_COLUMNS evenly spaced ones (first and last included)."""
    return list(range(steps)) if steps <= MAX_STEP_COLUMNS else np.linspace(0, steps - 1, MAX_STEP_COLUMNS).round().astype(int).tolist()


def shown_steps_note(steps: int) -> str:
    """What a figure's title says when `step_columns` leaves steps out."""
    return f"; {MAX_STEP_COLUMNS} of {steps} steps shown" if steps > MAX_STEP_COLUMNS else ""


def sequence_samples(loaded: Loaded) -> list[int]:
    """The first sample of each of the first SEQUENCE_SAMPLES classes."""
    firsts = {}
    for index, label in enumerate(loaded.labels.tolist()):
        firsts.setdefault(label, index)
    return list(firsts.values())[:SEQUENCE_SAMPLES]
