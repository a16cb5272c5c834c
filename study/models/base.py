"""The contract every architecture keeps: what the training loop, the checkpoint and the analysis rely on.

A model declares whether it spikes, which memory layout it prefers, and the layers the analysis
looks at (in the spirit of timm's per-model `first_conv` / `classifier`), so that no other module
reaches inside it. Adding an architecture: a model file here, an entry in `study.registry.ARCHITECTURES`,
and in each module of `search_spaces/` a search-space function and a `FIRST_TRIALS` entry (README).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from study.models.common import Output
from study.models.readout import OutputLayer


@dataclass(frozen=True)
class ExplainedSpikes:
    """The spikes Grad-CAM explains in a spiking model, and the stateless layer that reads them."""

    spikes: str  # a key of Output.spikes: `[T, B, C, h, w]` spike maps
    reader: str  # the attribute holding the layer that takes those spikes as its input


class Model(nn.Module, metaclass=ABCMeta):
    """Subclasses set the class attributes and write `run` and the analysis's layers; `forward` is defined here, once."""

    spiking: ClassVar[bool]
    channels_last: ClassVar[bool]  # trained in torch.channels_last (faster with oneDNN where it measured so)
    # The Hyperparams fields the model reads (the training loop's and the input's are added by
    # study.registry.hyperparams_of): a value fixed for another architecture never reaches this one's trials.
    hyperparams: ClassVar[frozenset[str]]

    @abstractmethod
    def run(self, x: torch.Tensor) -> Output:
        """One forward pass: `[B, C, H, W]` (conventional) or time-major `[T, B, C, H, W]` (spiking)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores `[B, classes]`: logits, or output spike counts per class (what pytorch-grad-cam needs)."""
        return self.run(x).scores


class ConventionalModel(Model):
    spiking = False

    @property
    def spike_layers(self) -> tuple[str, ...]:
        """None: a conventional model records no spikes."""
        return ()

    @property
    @abstractmethod
    def gradcam_layer(self) -> nn.Module:
        """The layer whose output Grad-CAM explains: the last convolutional block."""


class SpikingModel(Model):
    """A spiking model: time-major input, an `output_layer` (study.models.readout), and an input scale that
    calibration sets for event counts (a buffer, so checkpoints keep it)."""

    spiking = True
    output_layer: OutputLayer  # set by each subclass

    def __init__(self):
        super().__init__()
        self.register_buffer("input_scale", torch.ones(()))

    def scale_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the first layer receives: the input times `input_scale` (1 unless calibration set it)."""
        return x * self.input_scale

    @abstractmethod
    def calibrate(self, x: torch.Tensor, calibration) -> None:
        """Set the layers' gains or thresholds from one scaled input batch `[T, B, C, H, W]`, recording them in
        `calibration` (study.models.calibration.calibrate calls it, under no_grad)."""

    @property
    @abstractmethod
    def spike_layers(self) -> tuple[str, ...]:
        """The hidden layers whose spikes (and membranes) `run` records, input side first: the keys of
        Output.spikes before OUTPUT_SPIKES."""

    @property
    @abstractmethod
    def explained_spikes(self) -> ExplainedSpikes:
        """What Grad-CAM explains: the last spiking feature maps and the stateless layer that reads them."""

    @property
    def output_neurons(self) -> nn.Module:
        """The output layer's leaky neurons (their threshold is drawn with the membrane traces)."""
        return self.output_layer.neuron
