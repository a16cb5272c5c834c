"""The output layer of a spiking model and how its class scores are read out.

- "spikes": leaky integrate-and-fire output neurons; a class's score is its neurons' spike count
  (cross-entropy over counts is snnTorch's `ce_count_loss`).
- "membrane_mean" / "membrane_max": the output neurons integrate without firing (no threshold, no
  reset); a class's score is its neurons' membrane potential averaged over time, or its maximum
  over time. A membrane readout gives every sample a graded score from the first step, so a
  network whose outputs would not yet spike still gets a useful gradient.
A population (several neurons per class) is summed per class in every readout.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from study.errors import lookup
from study.models.calibration import OUTPUT_RATE, fit_gain, scale_affine
from study.models.common import OUTPUT_SPIKES, Output, class_scores, per_class
from study.models.neurons import leaky_over_time


def leaky_integrator(current: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Membrane `[T, B, N]` of neurons that integrate `current` `[T, B, N]` with decay `beta` and never fire."""
    decay = beta.clamp(0, 1)
    membrane, trace = torch.zeros_like(current[0], dtype=torch.float32), []
    for step in current:  # T small steps on [B, classes]: cheap beside the convolutions
        membrane = decay * membrane + step.float()
        trace.append(membrane)
    return torch.stack(trace)


def _running_mean(membrane: torch.Tensor) -> torch.Tensor:
    steps = torch.arange(1, membrane.shape[0] + 1, device=membrane.device).view(-1, *[1] * (membrane.dim() - 1))
    return membrane.cumsum(0) / steps


# Readout -> (scores so far at every step from the output spikes or membrane [T, B, classes x pop]) ->
# [T, B, classes x pop]; the class scores are the last step's, summed per class.
RUNNING: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "spikes": lambda spikes, membrane: spikes.cumsum(0),
    "membrane_mean": lambda spikes, membrane: _running_mean(membrane),
    "membrane_max": lambda spikes, membrane: membrane.cummax(0).values,
}
READOUTS = tuple(RUNNING)


class OutputLayer(nn.Module):
    """`num_classes x population` output neurons read out as `readout` says."""

    def __init__(self, neuron: nn.Module, readout: str, num_classes: int):
        super().__init__()
        lookup(RUNNING, readout, "readout")
        self.neuron, self.readout, self.num_classes = neuron, readout, num_classes

    @property
    def fires(self) -> bool:
        """Whether the output neurons spike (spike-count readout) or only integrate (membrane readouts)."""
        return self.readout == "spikes"

    def forward(self, current: torch.Tensor, hidden_spikes: dict[str, torch.Tensor]) -> Output:
        """current `[T, B, classes x population]` -> the model's Output, hidden layers' spikes included."""
        if self.fires:
            spikes, membrane = leaky_over_time(self.neuron, current)
            return Output(class_scores(spikes, self.num_classes), {**hidden_spikes, OUTPUT_SPIKES: spikes}, membrane)
        membrane = leaky_integrator(current, self.neuron.beta)
        scores = membrane.mean(0) if self.readout == "membrane_mean" else membrane.max(0).values
        return Output(per_class(scores, self.num_classes), dict(hidden_spikes), membrane)

    def calibrate(self, current: torch.Tensor, affine: nn.Module, calibration) -> None:
        """Spike-count outputs: scale `affine` (the layer making `current`) to fire at OUTPUT_RATE. Membrane readouts do not fire."""
        if self.fires:
            gain, rate = fit_gain(self.neuron, current, OUTPUT_RATE)
            scale_affine(affine, gain)
            calibration.gains[OUTPUT_SPIKES], calibration.rates[OUTPUT_SPIKES] = gain, rate

    def running_scores(self, output: Output) -> torch.Tensor:
        """The class scores as they stood after each step, `[T, B, classes]`; the last step's are `output.scores`."""
        return per_class(RUNNING[self.readout](output.spikes.get(OUTPUT_SPIKES), output.membrane), self.num_classes)
