"""Run a NIR file as NIR defines it, step by step: the round trip that checks an export.

The wiring (node order, summed inputs, the recurrent edges that carry last step's values) is
nirtorch's generic interpreter (`nirtorch.nir_to_torch`); the nodes are mapped here from NIR's
equations, discretised with the graph's time step, and not from this project's models. nirtorch's
own maps are not used: in 2.6 its Affine map drops the bias, and a NIR Flatten's dimensions count
without the batch axis that a torch module runs with. snnTorch's `import_from_nir` maps NIR's LIF
(reset to a value) but not LI, Threshold or Scale: it reads the graphs of networks trained with reset
to zero and a spike-count readout, and the exporter checks those with it too.
"""

from __future__ import annotations

from pathlib import Path

import nir
import nirtorch
import numpy as np
import torch
from snntorch._neurons.neurons import SpikingNeuron
from torch import nn

from study.models.neurons import untracked


class LeakyIntegrator(nn.Module):
    """NIR's LI, forward Euler at time step dt: v_t = (1 - dt/tau) v_{t-1} + (r dt/tau) I_t (v_leak 0)."""

    def __init__(self, node: nir.LI, dt: float):
        super().__init__()
        if not np.allclose(node.v_leak, 0):
            raise ValueError("LI with a nonzero v_leak is not supported by this reader")
        # float64 first: tau and r are written in float64 so that these come back exactly as trained
        self.register_buffer("decay", torch.from_numpy(1.0 - dt / node.tau.astype(np.float64)).float())
        self.register_buffer("gain", torch.from_numpy(node.r * dt / node.tau.astype(np.float64)).float())

    def forward(self, current: torch.Tensor, state: torch.Tensor | None = None):
        membrane = self.gain * current if state is None else self.decay * state + self.gain * current
        return membrane, membrane


class LeakyFire(LeakyIntegrator):
    """NIR's LIF (v_leak 0): the LI's step, then a spike where v is above v_threshold, and v becomes v_reset there."""

    def __init__(self, node: nir.LIF, dt: float):
        super().__init__(node, dt)
        self.register_buffer("threshold", torch.from_numpy(np.asarray(node.v_threshold, dtype=np.float32)))
        self.register_buffer("reset_to", torch.from_numpy(np.asarray(node.v_reset, dtype=np.float32)))

    def forward(self, current: torch.Tensor, state: torch.Tensor | None = None):
        membrane, _ = super().forward(current, state)
        fired = membrane > self.threshold
        return fired.float(), torch.where(fired, self.reset_to, membrane)


class Heaviside(nn.Module):
    """NIR's Threshold: 1 where the input is above the threshold."""

    def __init__(self, node: nir.Threshold):
        super().__init__()
        self.register_buffer("threshold", torch.from_numpy(np.asarray(node.threshold, dtype=np.float32)))

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        return (value > self.threshold).float()


class Elementwise(nn.Module):
    """NIR's Scale: the input times a per-element factor."""

    def __init__(self, node: nir.Scale):
        super().__init__()
        self.register_buffer("scale", torch.from_numpy(np.asarray(node.scale, dtype=np.float32)))

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        return value * self.scale


def _conv2d(node: nir.Conv2d) -> nn.Conv2d:
    out_channels, in_channels = node.weight.shape[:2]
    conv = nn.Conv2d(in_channels, out_channels, node.weight.shape[2:], stride=tuple(node.stride), padding=tuple(node.padding),
                     dilation=tuple(node.dilation), groups=int(node.groups))
    conv.weight.data, conv.bias.data = torch.from_numpy(node.weight).float(), torch.from_numpy(node.bias).float()
    return conv


def _affine(node: nir.Affine) -> nn.Linear:
    linear = nn.Linear(node.weight.shape[1], node.weight.shape[0])
    linear.weight.data, linear.bias.data = torch.from_numpy(node.weight).float(), torch.from_numpy(node.bias).float()
    return linear


def _flatten(node: nir.Flatten) -> nn.Flatten:
    """NIR counts dimensions without the batch axis; the torch module runs on [B, ...]."""
    shift = lambda dim: dim + 1 if dim >= 0 else dim  # noqa: E731
    return nn.Flatten(shift(int(node.start_dim)), shift(int(node.end_dim)))


def _avg_pool(node: nir.AvgPool2d) -> nn.AvgPool2d:
    return nn.AvgPool2d(tuple(int(k) for k in node.kernel_size), tuple(int(s) for s in node.stride), tuple(int(p) for p in node.padding))


def read_graph(path: Path) -> nir.NIRGraph:
    return nir.read(str(path))


def with_output_from(graph: nir.NIRGraph, node: str) -> nir.NIRGraph:
    """The same graph with its output taken from `node` instead (e.g. a spiking layer's membrane, to compare values,
    not spikes, or a hidden layer's spikes); the output node takes `node`'s shape, which NIR's type check wants.
    Only the nodes that `node` depends on are kept: nirtorch's interpreter never finishes a graph with a node
    that leads nowhere (as the layers after a hidden layer would)."""
    output = next(name for name, value in graph.nodes.items() if isinstance(value, nir.Output))
    kept, frontier = {node}, [node]
    while frontier:  # everything upstream of `node`, recurrent edges included
        target = frontier.pop()
        for source, _ in (edge for edge in graph.edges if edge[1] == target and edge[0] not in kept):
            kept.add(source)
            frontier.append(source)
    edges = [edge for edge in graph.edges if edge[0] in kept and edge[1] in kept] + [(node, output)]
    shape = next(iter(graph.nodes[node].output_type.values()))
    nodes = {name: value for name, value in graph.nodes.items() if name in kept}
    nodes[output] = nir.Output(output_type={"output": np.array(shape)})
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph.metadata))


def with_membrane_output(graph: nir.NIRGraph, node: str) -> nir.NIRGraph:
    """The same graph with its output taken from `node`'s membrane. An `LI` node's output is its membrane; an `LIF`
    node is read as the `LI` with its time constants, whose membrane is the LIF's for as long as it does not fire
    (so compare it only where the layer emitted no spike)."""
    value = graph.nodes[node]
    if isinstance(value, nir.LIF):
        nodes = {**graph.nodes, node: nir.LI(tau=value.tau, r=value.r, v_leak=value.v_leak)}
        graph = nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=dict(graph.metadata))
    elif not isinstance(value, nir.LI):
        raise ValueError(f"node {node} is a {type(value).__name__}, which has no membrane")
    return with_output_from(graph, node)


def to_torch(graph: nir.NIRGraph) -> torch.fx.GraphModule:
    """The graph as a module that takes one time step `[B, ...]` and its state: `(output, state) = module(x, state)`."""
    dt = float(graph.metadata.get("dt", 1e-4))
    node_map = {
        nir.LI: lambda node: LeakyIntegrator(node, dt),
        nir.LIF: lambda node: LeakyFire(node, dt),
        nir.Threshold: Heaviside,
        nir.Scale: Elementwise,
        nir.Conv2d: _conv2d,
        nir.Affine: _affine,
        nir.Flatten: _flatten,
        nir.AvgPool2d: _avg_pool,
    }
    return nirtorch.nir_to_torch(graph, node_map)


def run_over_time(module: torch.fx.GraphModule, x: torch.Tensor) -> torch.Tensor:
    """The graph's output at every step of `x` `[T, B, ...]`, from zero state: `[T, B, outputs]`."""
    state, outputs = None, []
    with torch.no_grad():
        for step in x:  # [B, C, H, W]
            output, state = module(step, state)
            outputs.append(output)
    return torch.stack(outputs)


def snntorch_reads(graph: nir.NIRGraph) -> bool:
    """Whether snnTorch's `import_from_nir` can read the graph: its neurons are all LIF (no LI, Threshold or Scale)."""
    return not any(isinstance(node, (nir.LI, nir.Threshold, nir.Scale)) for node in graph.nodes.values())


def run_with_snntorch(graph: nir.NIRGraph, x: torch.Tensor) -> torch.Tensor:
    """The graph's output spikes on `x` `[T, B, ...]` as snnTorch 1.0's `import_from_nir` reads it: `[T, B, outputs]`.

    One sample at a time: that importer maps NIR's Flatten dimensions onto torch's as they are, so its
    Flatten also flattens the batch axis. Its neurons keep their state (`init_hidden`) and are reset per sample.
    """
    from snntorch.import_nir import import_from_nir

    module = import_from_nir(graph)
    neurons = [untracked(neuron) for neuron in module.modules() if isinstance(neuron, SpikingNeuron)]
    samples = []
    with torch.no_grad():
        for sample in x.unbind(1):  # [T, ...]
            for neuron in neurons:
                neuron.reset_mem()
            samples.append(torch.stack([module(step.unsqueeze(0))[0].reshape(-1) for step in sample]))
    return torch.stack(samples, dim=1).float()
