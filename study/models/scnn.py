"""The spiking CNN: the seed's N-MNIST network (at its default capacity) with leaky integrate-and-fire neurons.

Stateless layers (convolution, BatchNorm, pooling, linear) run once over all time steps folded
into the batch; only the neurons step through time.
"""

from __future__ import annotations

import torch
from torch import nn

from study.config import Hyperparams
from study.models.base import ExplainedSpikes, SpikingModel
from study.models.blocks import CAPACITY, conv_blocks
from study.models.calibration import HIDDEN_RATE, Calibration, fit_gain, scale_affine
from study.models.common import Output, flat_features, fold_time
from study.models.neurons import NEURON, leaky, leaky_over_time
from study.models.readout import OutputLayer


class SpikingCNN(SpikingModel):
    """`blocks` x (conv - [BatchNorm] - pool - LIF), then linear to `num_classes x population` output neurons."""

    channels_last = True  # oneDNN's preferred layout: training step 1.2-1.3x faster on CPU (see docs/benchmarks.md)
    hyperparams = CAPACITY | NEURON | {"dropout", "population", "readout"}

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, hp: Hyperparams):
        super().__init__()
        self.blocks = conv_blocks(input_shape[0], input_shape[1:], hp)
        self.neurons = nn.ModuleList(leaky(hp) for _ in self.blocks)
        flat = flat_features(nn.Sequential(*self.blocks), input_shape)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(hp.dropout), nn.Linear(flat, num_classes * hp.population))
        self.output_layer = OutputLayer(leaky(hp), hp.readout, num_classes)

    def run(self, x: torch.Tensor) -> Output:
        """x: `[T, B, C, H, W]` input current or spikes."""
        spikes, membranes = {}, {}
        x = self.scale_input(x)
        for layer, block, neuron in zip(self.spike_layers, self.blocks, self.neurons):
            x, membranes[layer] = leaky_over_time(neuron, block.over_time(x))  # [T, B, C_i, H / 2^i, W / 2^i]
            spikes[layer] = x
        output = self.output_layer(fold_time(self.classifier, x), spikes)  # current [T, B, classes x pop]
        output.membranes = membranes
        return output

    def calibrate(self, x: torch.Tensor, calibration: Calibration) -> None:
        """Layer by layer from the input: the gain on each block's weights that makes its neurons fire at HIDDEN_RATE."""
        for layer, block, neuron in zip(self.spike_layers, self.blocks, self.neurons):
            current = block.over_time(x)
            gain, rate = fit_gain(neuron, current, HIDDEN_RATE)
            scale_affine(block.affine, gain)
            calibration.gains[layer], calibration.rates[layer] = gain, rate
            x, _ = leaky_over_time(neuron, current * gain)
        self.output_layer.calibrate(fold_time(self.classifier, x), self.classifier[-1], calibration)

    @property
    def spike_layers(self) -> tuple[str, ...]:
        """lif1, lif2, ...: one per convolution block."""
        return tuple(f"lif{index}" for index in range(1, len(self.blocks) + 1))

    @property
    def explained_spikes(self) -> ExplainedSpikes:
        return ExplainedSpikes(spikes=self.spike_layers[-1], reader="classifier")
