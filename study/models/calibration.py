"""Data-driven initialisation: before a spiking trial trains, its first batch puts every layer in its working range.

Whatever beta, threshold, T and input scale a trial was proposed, a freshly initialised spiking
network is often silent (no spike reaches the output, so the loss sits at ln(classes)) or saturated.
Following data-based initialisation of SNNs (layer by layer, as in weight normalisation for
converted networks and LSUV-style data-driven init for directly trained ones), one batch sets:
- the input scale of event counts, so that a nonzero count is about 1 whatever the dataset, frame
  size and T (counts per bin differ by orders of magnitude between them);
- layer by layer, from the input up, a gain on the weights feeding each leaky layer (the
  convolution, or its BatchNorm's affine parameters when there is one; pooling keeps the scale), found
  by bisection so that the layer fires at HIDDEN_RATE spikes per neuron and step (OUTPUT_RATE for
  spike-count outputs). Spikes are the same for (weights x g, threshold) and (weights, threshold / g),
  so this is also a threshold calibration; the threshold proposed still sets the membrane's scale,
  which the surrogate gradient's slope is measured in;
- for the spiking LSTM's layers, whose membrane o * tanh(c) never resets, the threshold itself: the
  membrane quantile that fires at HIDDEN_RATE.
Membrane readouts do not fire, so their output layer is left as initialised.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from study.models.lif_scan import leaky_scan

HIDDEN_RATE = 0.1  # initial spikes per neuron per time step of hidden layers
OUTPUT_RATE = 0.2  # of spike-count output neurons: a few spikes per neuron over T steps
TOLERANCE = 1.25  # a rate within [target / TOLERANCE, target * TOLERANCE] is close enough
GAIN_RANGE = 12.0  # gains searched between 2**-GAIN_RANGE and 2**GAIN_RANGE
BISECTION_STEPS = 30


@dataclass
class Calibration:
    """What the first batch set: the input scale, and per layer its gain or threshold and the rate it then fires at."""

    input_scale: float = 1.0
    gains: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        parts = [f"input scale {self.input_scale:.3g}"]
        parts += [f"{name} gain {gain:.3g}" for name, gain in self.gains.items()]
        parts += [f"{name} threshold {value:.3g}" for name, value in self.thresholds.items()]
        parts += [f"{name} fires {rate:.3f}" for name, rate in self.rates.items()]
        return ", ".join(parts)


def fire_rate(neuron: nn.Module, current: torch.Tensor) -> float:
    """Spikes per neuron per step of a leaky layer driven by `current` `[T, B, ...]`."""
    spikes, _ = leaky_scan(current, neuron.beta, neuron.threshold, neuron.spike_grad, neuron.reset_mechanism)
    return float(spikes.mean())


def _distance(rate: float, target: float) -> float:
    return abs(math.log(max(rate, 1e-12) / target))


def fit_gain(neuron: nn.Module, current: torch.Tensor, target: float) -> tuple[float, float]:
    """(gain, rate): the gain on `current` at which `neuron` fires closest to `target`, by bisection in log2.

    A layer's rate grows with the gain on its input current; a layer that no gain makes fire (no
    positive current at all) keeps gain 1.
    """
    low, high = -GAIN_RANGE, GAIN_RANGE
    best_gain, best_rate = 1.0, fire_rate(neuron, current)
    for _ in range(BISECTION_STEPS):
        if target / TOLERANCE <= best_rate <= target * TOLERANCE:
            break
        middle = (low + high) / 2
        rate = fire_rate(neuron, current * 2.0**middle)
        if _distance(rate, target) < _distance(best_rate, target):
            best_gain, best_rate = 2.0**middle, rate
        low, high = (middle, high) if rate < target else (low, middle)
    return (best_gain, best_rate) if best_rate > 0 else (1.0, 0.0)


def scale_affine(layer: nn.Module, gain: float) -> None:
    """Multiply a convolution's, linear layer's or BatchNorm's weight and bias by `gain`: its output scales by `gain`."""
    with torch.no_grad():
        layer.weight.mul_(gain)
        if layer.bias is not None:
            layer.bias.mul_(gain)


def fit_threshold(membrane: torch.Tensor, target: float) -> float:
    """The threshold at which a membrane that never resets, `[T, B, ...]`, is above it at a `target` share of steps."""
    values = membrane.detach().flatten().float()
    if values.numel() > 2**24:  # torch.quantile's limit: a strided sample keeps the quantile's estimate
        values = values[:: values.numel() // 2**24 + 1]
    return max(float(torch.quantile(values, 1.0 - target)), 1e-6)


def input_scale(batch: torch.Tensor) -> float:
    """1 / the mean nonzero value of a batch of event counts: a typical nonzero count then becomes about 1."""
    nonzero = batch[batch != 0]
    return 1.0 / float(nonzero.float().mean()) if nonzero.numel() else 1.0


@contextlib.contextmanager
def calibrating(model: nn.Module) -> Iterator[None]:
    """Forward passes as in training but deterministic: BatchNorm on batch statistics (its running
    statistics left as they were), dropout off, no gradients; the model's mode restored after."""
    was_training = model.training
    norms = [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    kept = [{name: buffer.clone() for name, buffer in norm.named_buffers()} for norm in norms]
    model.eval()
    for norm in norms:
        norm.train()
    try:
        with torch.no_grad():
            yield
    finally:
        for norm, buffers in zip(norms, kept):
            for name, buffer in norm.named_buffers():
                buffer.copy_(buffers[name])
        model.train(was_training)


def calibrate(model: nn.Module, batch: torch.Tensor, events: bool) -> Calibration:
    """Set `model`'s input scale (event data only) and its layers' gains or thresholds from one input batch
    `[T, B, C, H, W]` (the model's input as the training loop adapts it)."""
    calibration = Calibration()
    with calibrating(model):
        if events:
            calibration.input_scale = input_scale(batch)
            model.input_scale.fill_(calibration.input_scale)
        model.calibrate(model.scale_input(batch), calibration)
    return calibration
