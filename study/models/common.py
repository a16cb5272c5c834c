"""What every model shares: its output record and the time-folding helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


# The key of the output layer's spikes in Output.spikes; every other key is a hidden layer.
OUTPUT_SPIKES = "out"


@dataclass
class Output:
    """A forward pass: class scores plus, for spiking models, what the neurons did."""

    scores: torch.Tensor  # [B, classes]: logits (CNN), output spike counts or the membrane readout per class (SNNs)
    spikes: dict[str, torch.Tensor] = field(default_factory=dict)  # layer -> spikes [T, B, ...], OUTPUT_SPIKES last
    membrane: torch.Tensor | None = None  # output layer membrane [T, B, classes x population]
    membranes: dict[str, torch.Tensor] = field(default_factory=dict)  # hidden layer -> membrane [T, B, ...] (operation counts)

    def predictions(self) -> torch.Tensor:
        """The predicted class of each sample, `[B]`: the highest score; among classes tied on it (with spike
        counts, a silent sample ties every class), the one whose output neurons' mean membrane is highest.
        A tie is then credited to no class by accident (argmax alone would give it to the first)."""
        if self.membrane is None:
            return self.scores.argmax(1)
        classes = self.scores.shape[1]
        tie_break = per_class(self.membrane.float().mean(0), classes)  # [B, classes]
        top = self.scores == self.scores.max(1, keepdim=True).values
        return tie_break.masked_fill(~top, -torch.inf).argmax(1)

    def spike_counts(self) -> dict[str, tuple[float, int]]:
        """Per recorded layer: (spikes emitted, neuron updates), for its spike rate per neuron and step."""
        return {name: (float(s.detach().sum()), s.numel()) for name, s in self.spikes.items()}


# On a CPU a [T*B, ...] batch of activations outgrows the caches: chunks of about this many samples
# measured fastest (training step of the spiking CNN, batch 64, 2 cores: T=100 1.11 s in chunks of
# 256 samples against 1.63 s all at once; equal at T=25). A GPU takes all steps at once.
CPU_FOLD_SAMPLES = 256


def fold_time(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run a stateless layer over time steps folded into the batch: [T, B, ...] -> [t*B, ...] -> [T, B, ...]."""
    steps, batch = x.shape[:2]
    chunk = steps if x.is_cuda else max(1, CPU_FOLD_SAMPLES // batch)
    if chunk >= steps:
        return layer(x.flatten(0, 1)).unflatten(0, (steps, batch))
    # Concatenated as [t*B, ...] batches, so a channels-last layout survives (torch.cat of the 5-D
    # views would fall back to NCHW, and every convolution and pooling backward would then copy).
    return torch.cat([layer(part.flatten(0, 1)) for part in x.split(chunk)]).unflatten(0, (steps, batch))


def per_class(values: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[..., classes x population] -> [..., classes]: a population's neurons (consecutive) summed per class."""
    return values.unflatten(-1, (num_classes, -1)).sum(-1)


def class_scores(output_spikes: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Spike counts per class: [T, B, classes x population] -> [B, classes] (a population's neurons summed).

    Cross-entropy over these counts is snnTorch's `ce_count_loss` (with `population_code=True`
    when population > 1); `ce_rate_loss(population_code=True)` raises TypeError without `weight`.
    """
    return per_class(output_spikes.sum(0), num_classes)


def flat_features(features: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Number of features `features` makes of one [C, H, W] input (in eval mode: BatchNorm statistics stay untouched)."""
    training = features.training
    features.eval()
    try:
        with torch.no_grad():
            return features(torch.zeros(1, *input_shape)).numel()
    finally:
        features.train(training)
