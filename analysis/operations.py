"""Operations per sample in the NeuroBench sense: multiply-accumulates and synaptic operations.

Every call of a convolution, linear layer or LSTM cell is counted by a forward hook, so layers
run over time-folded chunks or once per time step are counted for every step they see.
- A layer whose input is binary (spikes) costs synaptic operations (synops): one accumulate per
  nonzero input and per weight it reaches, e.g. a spike into a linear layer costs `out_features`.
- Any other input (images, event counts, membrane potentials) costs dense multiply-accumulates
  (MACs), one per weight use, zeros included. Bias additions are not counted.
- `dense_macs` counts every layer as if its input were dense (NeuroBench's "Dense"): the
  arithmetic a framework performs, which the benchmark's compute efficiency is measured in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from study.models import Output


@dataclass(frozen=True)
class OperationCount:
    """Operations of one forward pass, per sample."""

    macs: float  # multiply-accumulates: layers fed non-spike input (the whole CNN)
    synops: float  # accumulates triggered by input spikes
    ops: float  # macs + synops
    activation_sparsity: float  # fraction of zero activations: recorded spikes, or the CNN's ReLU outputs
    parameters: int
    model_bytes: int  # parameters + persistent buffers (what a checkpoint stores)


def is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def conv_synops(conv: nn.Conv2d, spikes: torch.Tensor) -> float:
    """Accumulates `conv` performs for binary input [N, Cin, H, W]: each spike reaches every weight it overlaps."""
    groups = conv.groups
    kernel = spikes.new_ones(groups, conv.in_channels // groups, *conv.kernel_size)
    # Per output position and group: the number of input spikes in its receptive field, [N, groups, h, w].
    reached = F.conv2d((spikes != 0).float(), kernel, stride=conv.stride, padding=conv.padding, dilation=conv.dilation, groups=groups)
    return float(reached.sum()) * (conv.out_channels // groups)


def conv_macs(conv: nn.Conv2d, output: torch.Tensor) -> float:
    return float(output.numel() * (conv.in_channels // conv.groups) * conv.kernel_size[0] * conv.kernel_size[1])


def matmul_macs(x: torch.Tensor, rows_out: int) -> float:
    """Dense multiply-accumulates of `x` [..., in] times a weight of `rows_out` x in."""
    return float(x.numel()) * rows_out


class Tally:
    """Forward hooks that add up each counted layer's operations, and the ReLU outputs for the sparsity."""

    def __init__(self):
        self.macs = self.synops = self.dense = 0.0
        self.relu_outputs: list[torch.Tensor] = []

    def layer(self, module: nn.Module, args: tuple, output) -> None:
        x = args[0]
        if isinstance(module, nn.Conv2d):
            dense = conv_macs(module, output)
            self.dense += dense
            if is_binary(x):
                self.synops += conv_synops(module, x)
            else:
                self.macs += dense
        elif isinstance(module, nn.Linear):
            self._matmul(x, module.out_features)
        elif isinstance(module, nn.LSTMCell):  # four gates, from the input and from the hidden state
            self._matmul(x, 4 * module.hidden_size)
            if len(args) > 1 and args[1] is not None:
                self._matmul(args[1][0], 4 * module.hidden_size)

    def relu(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        self.relu_outputs.append(output)

    def _matmul(self, x: torch.Tensor, rows_out: int) -> None:
        dense = matmul_macs(x, rows_out)
        self.dense += dense
        if is_binary(x):
            self.synops += float(torch.count_nonzero(x)) * rows_out
        else:
            self.macs += dense


def zero_fraction(tensors: list[torch.Tensor]) -> float:
    """Fraction of zeros over all `tensors`; NaN when there are none."""
    total = sum(t.numel() for t in tensors)
    if not total:
        return float("nan")
    return 1.0 - sum(int(torch.count_nonzero(t)) for t in tensors) / total


def model_size(model: nn.Module) -> tuple[int, int]:
    """(parameter count, bytes of parameters and persistent buffers).

    The state dict leaves out snnTorch's non-persistent state buffers, whose size is the last batch's.
    """
    parameters = sum(p.numel() for p in model.parameters())
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return parameters, size


def tally(model: nn.Module, inputs: torch.Tensor) -> tuple[Tally, Output]:
    """The operations of one forward pass over `inputs` (the whole batch), and the pass's output."""
    counted = Tally()
    handles = [
        module.register_forward_hook(counted.layer)
        for module in model.modules()
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.LSTMCell))
    ]
    handles += [module.register_forward_hook(counted.relu) for module in model.modules() if isinstance(module, nn.ReLU)]
    try:
        with torch.no_grad():
            output = model.run(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return counted, output


def dense_macs(model: nn.Module, inputs: torch.Tensor) -> float:
    """Multiply-accumulates of one forward pass over the whole batch `inputs`, every input counted as dense."""
    return tally(model, inputs)[0].dense


def count_operations(model: nn.Module, inputs: torch.Tensor) -> OperationCount:
    """Operations per sample, averaged over the batch in `inputs` ([T, B, ...] spiking, [B, ...] otherwise)."""
    batch = inputs.shape[1] if model.spiking else inputs.shape[0]
    counted, output = tally(model, inputs)
    activations = list(output.spikes.values()) if model.spiking else counted.relu_outputs
    parameters, size = model_size(model)
    macs, synops = counted.macs / batch, counted.synops / batch
    return OperationCount(macs, synops, macs + synops, zero_fraction(activations), parameters, size)
