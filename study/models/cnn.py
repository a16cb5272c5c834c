"""The conventional CNN: the seed project's ANN (at its default capacity), the baseline the spiking models are compared with."""

from __future__ import annotations

import torch
from torch import nn

from study.config import Hyperparams
from study.models.base import ConventionalModel
from study.models.blocks import conv_blocks
from study.models.common import Output, flat_features


class CNN(ConventionalModel):
    """`blocks` x (conv - [BatchNorm] - pool - ReLU), then linear. Takes `[B, C, H, W]`."""

    channels_last = True  # oneDNN's preferred layout: training step 2.2x faster on CPU (see docs/benchmarks.md)

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, hp: Hyperparams):
        super().__init__()
        blocks = conv_blocks(input_shape[0], input_shape[1:], hp)
        self.features = nn.Sequential(*(nn.Sequential(block, nn.ReLU()) for block in blocks))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(hp.dropout), nn.Linear(flat_features(self.features, input_shape), num_classes)
        )

    def run(self, x: torch.Tensor) -> Output:
        return Output(self.classifier(self.features(x)))

    @property
    def gradcam_layer(self) -> nn.Module:
        return self.features[-1]  # the last block, ReLU included
