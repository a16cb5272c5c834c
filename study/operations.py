"""Operations per inference by NeuroBench's definitions (neurobench 2.3.0, `metrics/workload`).

Every call of a convolution, linear layer or LSTM cell is seen by a forward pre-hook, so layers run
over time-folded chunks or once per time step are counted for every step they see.
- Effective operations: products of a nonzero input with a nonzero weight (zeros skipped, biases,
  pooling and normalisation not counted). A layer whose inputs are all binary (spikes: values in
  {-1, 0, 1}) performs effective ACs (accumulates); any other layer effective MACs.
- Dense operations: every product of an input with a weight, zeros included (convolution padding
  is not an input, so it is not counted).
- LSTM cells as NeuroBench counts them: the gate products of the input and of the hidden state,
  then the element-wise products f*c + i*g and o*tanh(c).
- Membrane updates (NeuroBench's MembraneUpdates): every neuron at the first step, then each
  neuron whose membrane changed from one step to the next.
- Activation sparsity: the fraction of zero activations (spikes, or the CNN's ReLU outputs).

NeuroBench decides binary or not per forward call, so one event count of 2 in a chunk of time steps
turns the whole chunk into MACs and the counts change with batch size, chunking and device. Here the
decision is made per layer, over every input it received: the same model and samples give the same
counts at any batch size, on the CPU's chunked path and the GPU's one-call path. Where every call's
inputs are alike (the cross-check in tests/test_operations.py), both decisions agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from study.models import Output

COUNTED_LAYERS = (nn.Conv2d, nn.Linear, nn.LSTMCell)


@dataclass(frozen=True)
class LayerCount:
    """One layer's operations per sample."""

    name: str  # the module's name in the model
    binary: bool  # every input it received was binary: its effective operations are ACs
    effective: float  # products of a nonzero input and a nonzero weight
    dense: float  # every product, zeros included


@dataclass(frozen=True)
class OperationCount:
    """Operations of one inference (a forward pass over all time steps), per sample, over `samples` samples."""

    effective_macs: float  # in layers fed non-binary input (the whole CNN; a spiking model's first layer on event counts or pixels)
    effective_acs: float  # in layers fed spikes
    dense: float  # every operation, zeros included
    membrane_updates: float
    activation_sparsity: float  # fraction of zero activations: recorded spikes, or the CNN's ReLU outputs
    parameters: int
    model_bytes: int  # parameters + persistent buffers (what a checkpoint stores)
    samples: int
    layers: tuple[LayerCount, ...] = ()

    @property
    def effective(self) -> float:
        return self.effective_macs + self.effective_acs


def is_binary(x: torch.Tensor) -> bool:
    """NeuroBench's test for spikes: every value is -1, 0 or 1."""
    return bool(((x == 0) | (x == 1) | (x == -1)).all())


def nonzero(x: torch.Tensor) -> torch.Tensor:
    return (x != 0).to(torch.float32)


def conv_products(conv: nn.Conv2d, x: torch.Tensor, weight: torch.Tensor) -> float:
    """Products of input `x` [N, Cin, H, W] with `weight`, both already 0/1: a convolution of them, summed."""
    reached = F.conv2d(x, weight, stride=conv.stride, padding=conv.padding, dilation=conv.dilation, groups=conv.groups)
    return float(reached.sum(dtype=torch.float64))


def linear_products(x: torch.Tensor, weight: torch.Tensor) -> float:
    """Products of 0/1 input `x` [..., in] with 0/1 `weight` [out, in]: each input reaches its column's weights."""
    return float((x.reshape(-1, x.shape[-1]).double() @ weight.sum(0).double()).sum())


def lstm_cell_products(cell: nn.LSTMCell, x: torch.Tensor, state, dense: bool) -> float:
    """NeuroBench's `lstm_cell_macs`: gate products of input and hidden state, then f*c + i*g and o*tanh(c)."""
    ones_or_nonzero = torch.ones_like if dense else nonzero
    x, w_ih, w_hh = ones_or_nonzero(x), ones_or_nonzero(cell.weight_ih), ones_or_nonzero(cell.weight_hh)
    gates = x @ w_ih.T  # [B, 4 * hidden]
    if state is not None:
        # NeuroBench's dense count binarises the state instead of setting it to ones (its `cylce_tuple_ones`
        # recurses into `cylce_tuple`); followed here so that both count the same.
        hidden, cell_state = nonzero(state[0]), nonzero(state[1])
        gates = gates + hidden @ w_hh.T
    products = float(gates.sum(dtype=torch.float64))
    if cell.bias:
        gates = gates + ones_or_nonzero(cell.bias_ih) + ones_or_nonzero(cell.bias_hh)
    i, f, g, o = nonzero(gates).chunk(4, dim=1)
    c = f * cell_state + i * g if state is not None else i * g
    products += float(c.sum(dtype=torch.float64))
    return products + float(nonzero(o * nonzero(c)).sum(dtype=torch.float64))


def effective_products(module: nn.Module, args: tuple) -> float:
    """Products of a nonzero input with a nonzero weight in one call of a counted layer."""
    x = args[0]
    if isinstance(module, nn.LSTMCell):
        return lstm_cell_products(module, x, args[1] if len(args) > 1 else None, dense=False)
    if isinstance(module, nn.Conv2d):
        return conv_products(module, nonzero(x), nonzero(module.weight))
    return linear_products(nonzero(x), nonzero(module.weight))


def dense_products(module: nn.Module, args: tuple) -> float:
    """Every product in one call of a counted layer, zeros included (convolution padding is not an input)."""
    x = args[0]
    if isinstance(module, nn.LSTMCell):  # depends on which states are zero (see lstm_cell_products)
        return lstm_cell_products(module, x, args[1] if len(args) > 1 else None, dense=True)
    if isinstance(module, nn.Conv2d):  # how many inputs each output sees depends on its place: convolve ones
        ones = torch.ones_like(x, dtype=torch.float32)
        return conv_products(module, ones, torch.ones_like(module.weight, dtype=torch.float32))
    return dense_linear_products(module, x)


def dense_linear_products(linear: nn.Linear, x: torch.Tensor) -> float:
    """Every product of one call of `linear` on `x` [..., in]: every input reaches every output."""
    return float(x.numel()) * linear.out_features


@dataclass
class LayerTally:
    binary: bool = True
    effective: float = 0.0
    dense: float = 0.0


@dataclass
class Tally:
    """What forward pre-hooks add up over one or more passes: per-layer products and activations."""

    layers: dict[str, LayerTally] = field(default_factory=dict)
    zeros: int = 0  # zero activations
    activations: int = 0
    membrane_updates: float = 0.0
    samples: int = 0

    def layer(self, name: str, module: nn.Module, args: tuple) -> None:
        tally = self.layers.setdefault(name, LayerTally())
        tally.binary = tally.binary and is_binary(args[0])
        tally.effective += effective_products(module, args)
        tally.dense += dense_products(module, args)

    def activation(self, output: torch.Tensor) -> None:
        self.zeros += output.numel() - int(torch.count_nonzero(output))
        self.activations += output.numel()

    def neuron_states(self, output: Output) -> None:
        """Spikes for the sparsity, membranes `[T, B, ...]` for the updates."""
        for spikes in output.spikes.values():
            self.activation(spikes)
        membranes = [*output.membranes.values(), *([output.membrane] if output.membrane is not None else [])]
        for membrane in membranes:
            self.membrane_updates += membrane_updates(membrane)

    def count(self, model: nn.Module) -> OperationCount:
        per = max(self.samples, 1)  # totals are summed before dividing, as neurobench does, so both round alike
        tallies = self.layers.values()
        parameters, size = model_size(model)
        return OperationCount(
            effective_macs=sum(t.effective for t in tallies if not t.binary) / per,
            effective_acs=sum(t.effective for t in tallies if t.binary) / per,
            dense=sum(t.dense for t in tallies) / per,
            membrane_updates=self.membrane_updates / per,
            activation_sparsity=self.zeros / self.activations if self.activations else float("nan"),
            parameters=parameters,
            model_bytes=size,
            samples=self.samples,
            layers=tuple(LayerCount(name, t.binary, t.effective / per, t.dense / per) for name, t in self.layers.items()),
        )


def membrane_updates(membrane: torch.Tensor) -> float:
    """NeuroBench's count for one layer's membrane `[T, B, ...]`: all neurons at step 0, then those that changed."""
    return float(membrane[0].numel() + torch.count_nonzero(membrane[1:] - membrane[:-1]))


def model_size(model: nn.Module) -> tuple[int, int]:
    """(parameter count, bytes of parameters and persistent buffers).

    The state dict leaves out snnTorch's non-persistent state buffers, whose size is the last batch's.
    """
    parameters = sum(p.numel() for p in model.parameters())
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return parameters, size


def run_hooked(model: nn.Module, inputs: torch.Tensor, pre_hooks=(), hooks=()) -> Output:
    """One forward pass of `model` over `inputs` without gradients, with the (module, hook) pairs of `pre_hooks`
    (forward pre-hooks) and `hooks` (forward hooks) attached for this pass only."""
    handles = [module.register_forward_pre_hook(hook) for module, hook in pre_hooks]
    handles += [module.register_forward_hook(hook) for module, hook in hooks]
    try:
        with torch.no_grad():
            return model.run(inputs)
    finally:
        for handle in handles:
            handle.remove()


def tally_pass(model: nn.Module, inputs: torch.Tensor, tally: Tally) -> Output:
    """Run `model` once over `inputs` (`[T, B, ...]` spiking, `[B, ...]` otherwise), adding to `tally`."""
    layers = [
        (module, lambda module, args, name=name: tally.layer(name, module, args))
        for name, module in model.named_modules()
        if isinstance(module, COUNTED_LAYERS)
    ]
    # A spiking model's activations are its recorded spikes (Tally.neuron_states); the CNN's its ReLU outputs.
    relus = [] if model.spiking else [
        (module, lambda module, args, output: tally.activation(output)) for module in model.modules() if isinstance(module, nn.ReLU)
    ]
    output = run_hooked(model, inputs, pre_hooks=layers, hooks=relus)
    if model.spiking:
        tally.neuron_states(output)
    tally.samples += inputs.shape[1] if model.spiking else inputs.shape[0]
    return output


def count_operations(model: nn.Module, inputs: torch.Tensor, batch_size: int | None = None) -> OperationCount:
    """Operations per sample over the samples in `inputs` (`[T, B, ...]` spiking, `[B, ...]` otherwise),
    run `batch_size` samples at a time (default: all at once); the counts do not depend on it."""
    tally = Tally()
    batch_dim = 1 if model.spiking else 0
    for part in inputs.split(batch_size or inputs.shape[batch_dim], dim=batch_dim):
        tally_pass(model, part, tally)
    return tally.count(model)


def framework_macs(model: nn.Module, inputs: torch.Tensor) -> float:
    """Multiply-accumulates a framework performs in one forward pass over the whole batch `inputs`: every
    weight use, zeros and convolution padding included (what the benchmark's compute efficiency is measured in)."""
    total = 0.0

    def add(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):  # padding included: the framework multiplies it too
            total += output.numel() * (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
        else:
            total += dense_linear_products(module, args[0])

    run_hooked(model, inputs, hooks=[(module, add) for module in model.modules() if isinstance(module, (nn.Conv2d, nn.Linear))])
    return total
