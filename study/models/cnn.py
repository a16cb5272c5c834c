"""The conventional CNN: the seed project's ANN, the baseline the spiking models are compared with."""

from __future__ import annotations

import torch
from torch import nn

from study.config import Hyperparams
from study.models.base import ConventionalModel
from study.models.common import Output, flat_features, seed_conv_stack


class CNN(ConventionalModel):
    """conv 12@5x5 - pool - ReLU - conv 32@5x5 - pool - ReLU - linear. Takes `[B, C, H, W]`."""

    channels_last = True  # oneDNN's preferred layout: training step 2.2x faster on CPU (see docs/benchmarks.md)

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, hp: Hyperparams):
        super().__init__()
        block1, block2 = seed_conv_stack(input_shape[0])
        self.features = nn.Sequential(block1, nn.ReLU(), block2, nn.ReLU())
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(hp.dropout), nn.Linear(flat_features(self.features, input_shape), num_classes)
        )

    def run(self, x: torch.Tensor) -> Output:
        return Output(self.classifier(self.features(x)))

    @property
    def gradcam_layer(self) -> nn.Module:
        return self.features[-1]  # the last block's ReLU output
