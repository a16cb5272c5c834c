"""The contract every architecture keeps: what the training loop, the checkpoint and the analysis rely on.

A model declares whether it spikes, which memory layout it prefers, and the layers the analysis
looks at (in the spirit of timm's per-model `first_conv` / `classifier`), so that no other module
reaches inside it. Adding an architecture: a model file here, an entry in `study.registry.ARCHITECTURES`,
and a search-space function per dataset in `search_spaces/`.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from study.models.common import Output


@dataclass(frozen=True)
class ExplainedSpikes:
    """The spikes Grad-CAM explains in a spiking model, and the stateless layer that reads them."""

    spikes: str  # a key of Output.spikes: `[T, B, C, h, w]` spike maps
    reader: str  # the attribute holding the layer that takes those spikes as its input


class Model(nn.Module, metaclass=ABCMeta):
    """Subclasses set the class attributes and write `run` and the analysis's layers; `forward` is defined here, once."""

    spiking: ClassVar[bool]
    channels_last: ClassVar[bool]  # trained in torch.channels_last (faster with oneDNN where it measured so)

    @abstractmethod
    def run(self, x: torch.Tensor) -> Output:
        """One forward pass: `[B, C, H, W]` (conventional) or time-major `[T, B, C, H, W]` (spiking)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores `[B, classes]`: logits, or output spike counts per class (what pytorch-grad-cam needs)."""
        return self.run(x).scores


class ConventionalModel(Model):
    spiking = False

    @property
    @abstractmethod
    def gradcam_layer(self) -> nn.Module:
        """The layer whose output Grad-CAM explains: the last convolutional block."""


class SpikingModel(Model):
    spiking = True

    @property
    @abstractmethod
    def explained_spikes(self) -> ExplainedSpikes:
        """What Grad-CAM explains: the last spiking feature maps and the stateless layer that reads them."""

    @property
    @abstractmethod
    def output_neurons(self) -> nn.Module:
        """The output layer's leaky neurons (its threshold is drawn with the membrane traces)."""
