"""The spiking CNN: the seed's N-MNIST network with leaky integrate-and-fire neurons.

Stateless layers (convolution, pooling, linear) run once over all time steps folded into the
batch; only the neurons step through time.
"""

from __future__ import annotations

import torch
from torch import nn

from study.config import Hyperparams
from study.models.base import ExplainedSpikes, SpikingModel
from study.models.common import OUTPUT_SPIKES, Output, class_scores, flat_features, fold_time, seed_conv_stack
from study.models.neurons import leaky, leaky_over_time


class SpikingCNN(SpikingModel):
    """conv-pool-LIF, conv-pool-LIF, linear-LIF with `num_classes x population` output neurons."""

    channels_last = True  # oneDNN's preferred layout: training step 1.2-1.3x faster on CPU (see docs/benchmarks.md)

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, hp: Hyperparams):
        super().__init__()
        self.num_classes = num_classes
        self.conv1, self.conv2 = seed_conv_stack(input_shape[0])
        self.lif1, self.lif2, self.lif_out = leaky(hp), leaky(hp), leaky(hp)
        flat = flat_features(nn.Sequential(self.conv1, self.conv2), input_shape)
        self.fc = nn.Sequential(nn.Flatten(), nn.Dropout(hp.dropout), nn.Linear(flat, num_classes * hp.population))

    def run(self, x: torch.Tensor) -> Output:
        """x: `[T, B, C, H, W]` input current or spikes."""
        spk1, _ = leaky_over_time(self.lif1, fold_time(self.conv1, x))  # [T, B, 12, h1, w1]
        spk2, _ = leaky_over_time(self.lif2, fold_time(self.conv2, spk1))  # [T, B, 32, h2, w2]
        spk_out, mem_out = leaky_over_time(self.lif_out, fold_time(self.fc, spk2))  # [T, B, classes x pop]
        return Output(class_scores(spk_out, self.num_classes), {"lif1": spk1, "lif2": spk2, OUTPUT_SPIKES: spk_out}, mem_out)

    @property
    def explained_spikes(self) -> ExplainedSpikes:
        return ExplainedSpikes(spikes="lif2", reader="fc")

    @property
    def output_neurons(self) -> nn.Module:
        return self.lif_out
