"""Operations per sample in the NeuroBench sense: multiply-accumulates and synaptic operations.

Every call of a convolution, linear layer or LSTM cell is counted by a forward hook, so layers
run over time-folded chunks or once per time step are counted for every step they see.
- A layer whose input is binary (spikes) costs synaptic operations (synops): one accumulate per
  nonzero input and per weight it reaches, e.g. a spike into a linear layer costs `out_features`.
- Any other input (images, event counts, membrane potentials) costs dense multiply-accumulates
  (MACs), one per weight use, zeros included. Bias additions are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


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


def matmul_ops(x: torch.Tensor, rows_out: int) -> tuple[float, float]:
    """(macs, synops) of `x` [..., in] times a weight of `rows_out` x in."""
    if is_binary(x):
        return 0.0, float(torch.count_nonzero(x)) * rows_out
    return float(x.numel()) * rows_out, 0.0


class Tally:
    """Forward hooks that add up each counted layer's operations, and the ReLU outputs for the sparsity."""

    def __init__(self):
        self.macs = self.synops = 0.0
        self.relu_outputs: list[torch.Tensor] = []

    def layer(self, module: nn.Module, args: tuple, output) -> None:
        x = args[0]
        if isinstance(module, nn.Conv2d):
            if is_binary(x):
                self.synops += conv_synops(module, x)
            else:
                self.macs += conv_macs(module, output)
        elif isinstance(module, nn.Linear):
            self._add(*matmul_ops(x, module.out_features))
        elif isinstance(module, nn.LSTMCell):  # four gates, from the input and from the hidden state
            self._add(*matmul_ops(x, 4 * module.hidden_size))
            if len(args) > 1 and args[1] is not None:
                self._add(*matmul_ops(args[1][0], 4 * module.hidden_size))

    def relu(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        self.relu_outputs.append(output)

    def _add(self, macs: float, synops: float) -> None:
        self.macs += macs
        self.synops += synops


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


def count_operations(model: nn.Module, inputs: torch.Tensor) -> OperationCount:
    """Operations per sample, averaged over the batch in `inputs` ([T, B, ...] spiking, [B, ...] otherwise)."""
    batch = inputs.shape[1] if model.spiking else inputs.shape[0]
    tally = Tally()
    handles = [
        module.register_forward_hook(tally.layer)
        for module in model.modules()
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.LSTMCell))
    ]
    handles += [module.register_forward_hook(tally.relu) for module in model.modules() if isinstance(module, nn.ReLU)]
    try:
        with torch.no_grad():
            output = model.run(inputs)
    finally:
        for handle in handles:
            handle.remove()
    activations = list(output.spikes.values()) if model.spiking else tally.relu_outputs
    parameters, size = model_size(model)
    macs, synops = tally.macs / batch, tally.synops / batch
    return OperationCount(macs, synops, macs + synops, zero_fraction(activations), parameters, size)
