"""The conventional CNN: the seed project's ANN (at its default capacity), the baseline the spiking models are compared with."""

from __future__ import annotations

import torch
from torch import nn

from study.config import Hyperparams
from study.models.base import ConventionalModel
from study.models.blocks import CAPACITY, conv_blocks
from study.models.common import Output, flat_features


def he_initialise(features: nn.Module) -> None:
    """He (Kaiming) normal weights and zero biases for the convolutions before ReLUs, as torchvision's ResNets do.

    PyTorch's default (uniform, gain 1/sqrt(3) of He's) shrinks the signal at every block: four blocks
    without BatchNorm start about 5x too small, and SGD then stays at chance for its first epoch
    (digits, 4 blocks at width 0.5, SGD lr 0.025: 11-18% validation after one epoch, 62-76% with He's).
    """
    for module in features.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)


class CNN(ConventionalModel):
    """`blocks` x (conv - [BatchNorm] - pool - ReLU), then linear. Takes `[B, C, H, W]`."""

    channels_last = True  # oneDNN's preferred layout: training step 2.2x faster on CPU (see docs/benchmarks.md)
    hyperparams = CAPACITY | {"dropout"}

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, hp: Hyperparams):
        super().__init__()
        blocks = conv_blocks(input_shape[0], input_shape[1:], hp)
        self.features = nn.Sequential(*(nn.Sequential(block, nn.ReLU()) for block in blocks))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(hp.dropout), nn.Linear(flat_features(self.features, input_shape), num_classes)
        )
        he_initialise(self.features)

    def run(self, x: torch.Tensor) -> Output:
        return Output(self.classifier(self.features(x)))

    @property
    def gradcam_layer(self) -> nn.Module:
        return self.features[-1]  # the last block, ReLU included
