"""A spiking CNN as a NIR graph (the Neuromorphic Intermediate Representation, `nir` 1.0.8).

NIR describes networks in continuous time, without batch or time axes; a simulator or chip
discretises it with a time step `dt`. What the graph holds, layer by layer:
- convolutions and the output linear layer with BatchNorm (eval statistics) and the calibrated
  input scale folded into their weights and biases; average pooling as `AvgPool2d`; dropout is
  gone (identity at inference);
- each leaky layer as NIR's own primitives, because NIR's `LIF` resets the membrane *to* a value
  and this project's neurons (snnTorch's default) *subtract* the threshold one step after a spike:
  a leaky integrator `LI` (tau = dt / (1 - beta), r = tau / dt, so that one step is exactly
  v_t = beta v_{t-1} + I_t) drives a `Threshold`, whose spikes come back through `Scale(-threshold)`
  into the integrator's input; a recurrent edge carries the previous step's value, so this is
  m_t = beta m_{t-1} + I_t - threshold s_{t-1}, as trained;
- a layer trained with reset to zero (`reset="zero"`) as NIR's own `LIF` (v_reset 0), which is
  exactly that network: with a spike-count readout the graph then holds only node kinds that
  importers mapping NIR's neuron nodes read (checked with snnTorch's `import_from_nir`);
- a membrane readout's output neurons as an `LI` alone (they integrate and never fire).
The graph's metadata records dt, the time steps T, the input shape and encoding, the readout and
the class each output neuron belongs to (population coding: consecutive neurons per class).

What NIR cannot express (max pooling, the spiking LSTM's cells, a decay of 1) is a UserError
that names the layer and the searchable option that avoids it.
"""

from __future__ import annotations

import copy

import nir
import numpy as np
import torch
from torch import nn

from study.data.encoding import what_it_sees
from study.errors import UserError
from study.models import SpikingCNN, SpikingLSTM
from study.models.blocks import ConvBlock

# snnTorch's NIR export uses this time step; any dt gives the same discrete network, since tau and r
# are written relative to it.
DT = 1e-4
# Graph node names of the output layer and the graph's input and output.
INPUT, OUTPUT, OUTPUT_LAYER = "input", "output", "out"


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().float().numpy()


def _fold_batch_norm(weight: torch.Tensor, bias: torch.Tensor, norm: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of the convolution followed by `norm` at inference: y = g (Wx + b - mean) / sqrt(var + eps) + shift.
    Folded in float64 so that the one rounding is the final one to float32."""
    weight, bias = weight.double(), bias.double()
    if norm is None:
        return weight, bias
    factor = norm.running_var.double().add(norm.eps).rsqrt()
    if norm.weight is not None:
        factor = factor * norm.weight.double()
    shift = norm.bias.double() if norm.bias is not None else torch.zeros_like(factor)
    return weight * factor.view(-1, 1, 1, 1), (bias - norm.running_mean.double()) * factor + shift


def _decay(name: str, beta: torch.Tensor) -> float:
    """The layer's decay per step as its neurons use it (clamped to [0, 1]); refused at 1, where tau is infinite."""
    decay = float(beta.detach().clamp(0, 1))
    if decay >= 1.0:
        raise UserError(
            f"Layer {name} has beta = 1 (no leak): NIR's leaky integrator needs a finite time constant. "
            "Search with learn_beta=False (--fix learn_beta=False) to keep beta where it was proposed."
        )
    return decay


def _time_constants(decay: float, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """tau, r and v_leak of NIR's LI for one step v_t = decay v_{t-1} + I_t at time step DT (float64: read back exactly)."""
    tau = DT / (1.0 - decay)
    return {
        "tau": np.full(shape, tau, dtype=np.float64),
        "r": np.full(shape, tau / DT, dtype=np.float64),
        "v_leak": np.zeros(shape, dtype=np.float64),
    }


def _leaky_layer(nodes: dict, edges: list, source: str, name: str, neuron: nn.Module, shape: tuple[int, ...], fires: bool) -> str:
    """Add a leaky layer fed by `source`; returns the node whose output is the layer's (spikes or membrane)."""
    threshold = float(neuron.threshold.detach())
    if fires and neuron.reset_mechanism == "zero":  # NIR's LIF: v becomes v_reset at a spike, so v_{t+1} = I_{t+1}
        nodes[name] = nir.LIF(
            **_time_constants(_decay(name, neuron.beta), shape),
            v_threshold=np.full(shape, threshold, dtype=np.float32), v_reset=np.zeros(shape, dtype=np.float32),
        )
        edges.append((source, name))
        return name
    membrane = f"{name}_membrane"
    nodes[membrane] = nir.LI(**_time_constants(_decay(name, neuron.beta), shape))
    edges.append((source, membrane))
    if not fires:
        return membrane
    fire, reset = f"{name}_fire", f"{name}_reset"
    nodes[fire] = nir.Threshold(threshold=np.full(shape, threshold, dtype=np.float32))
    nodes[reset] = nir.Scale(scale=np.full(shape, -threshold, dtype=np.float32))
    edges += [(membrane, fire), (fire, reset), (reset, membrane)]  # reset -> membrane: the previous step's spikes
    return fire


def _refuse_unexpressible(model: nn.Module) -> None:
    if isinstance(model, SpikingLSTM):
        raise UserError(
            "Layer conv_lstm (snn.SConv2dLSTM) and layer lstm (snn.SLSTM) have no NIR equivalent: NIR has no LSTM "
            "cells. Export the spiking CNN instead (--arch scnn), which NIR can express with pooling=avg."
        )
    if not isinstance(model, SpikingCNN):
        raise UserError(f"{type(model).__name__} is not a spiking CNN; NIR export takes spiking CNNs only.")
    for index, block in enumerate(model.blocks):
        if not isinstance(block.pool, nn.AvgPool2d):
            raise UserError(
                f"Layer blocks.{index}.pool ({type(block.pool).__name__}) cannot be written as NIR: NIR has no max "
                "pooling. Search with average pooling (--fix pooling=avg) to get a network NIR can express."
            )


def folded_weights(model: SpikingCNN, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Block `index`'s (from 0) convolution with its BatchNorm, and for the first block the input scale, folded
    in: (weight, bias) in float64, what the graph's Conv2d node holds."""
    block = model.blocks[index]
    weight, bias = _fold_batch_norm(block.conv.weight, block.conv.bias, block.norm)
    if index == 0:
        weight = weight * float(model.input_scale)  # conv(s x) = (s W) x + b
    return weight, bias


def folded_copy(model: SpikingCNN) -> SpikingCNN:
    """The model with the graph's weights: BatchNorm and the input scale folded into the convolutions. It computes
    what the graph computes, rounding included, so a neuron exactly at its threshold fires in both or in neither."""
    folded = copy.deepcopy(model)
    with torch.no_grad():
        for index, block in enumerate(folded.blocks):
            weight, bias = folded_weights(model, index)
            block.conv.weight.copy_(weight.float())
            block.conv.bias.copy_(bias.float())
            block.norm = None
        folded.input_scale.fill_(1.0)
    return folded


def nir_graph(model: SpikingCNN, input_shape: tuple[int, int, int], hp, kind: str) -> nir.NIRGraph:
    """The NIR graph of a spiking CNN in eval mode; `input_shape` is one time step's `[C, H, W]`, `kind`
    the dataset's ("events" or "static"). A UserError if NIR cannot express the network."""
    _refuse_unexpressible(model)
    nodes: dict[str, nir.NIRNode] = {INPUT: nir.Input(input_type={"input": np.array(input_shape)})}
    edges: list[tuple[str, str]] = []
    source, shape = INPUT, tuple(input_shape)
    # Each leaky layer's nodes are named after the model's own layer (`spike_layers`: lif1, lif2, ...), so that
    # a layer's spikes in the graph (`spike_node`) and in the model's Output.spikes go by one name.
    for index, (layer, block, neuron) in enumerate(zip(model.spike_layers, model.blocks, model.neurons, strict=True), start=1):
        block: ConvBlock
        weight, bias = folded_weights(model, index - 1)
        conv, pool = f"conv{index}", f"pool{index}"
        nodes[conv] = nir.Conv2d(
            input_shape=shape[1:], weight=_array(weight), bias=_array(bias), stride=block.conv.stride,
            padding=block.conv.padding, dilation=block.conv.dilation, groups=block.conv.groups,
        )
        kernel = block.pool.kernel_size, block.pool.stride or block.pool.kernel_size
        nodes[pool] = nir.AvgPool2d(
            kernel_size=np.array(_pair(kernel[0])), stride=np.array(_pair(kernel[1])), padding=np.array(_pair(block.pool.padding))
        )
        shape = (block.conv.out_channels, shape[1] // 2, shape[2] // 2)
        edges += [(source, conv), (conv, pool)]
        source = _leaky_layer(nodes, edges, pool, layer, neuron, shape, fires=True)
    linear = model.classifier[-1]
    nodes["flatten"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
    nodes["fc"] = nir.Affine(weight=_array(linear.weight), bias=_array(linear.bias))
    edges += [(source, "flatten"), ("flatten", "fc")]
    out_layer = model.output_layer
    last = _leaky_layer(nodes, edges, "fc", OUTPUT_LAYER, out_layer.neuron, (linear.out_features,), fires=out_layer.fires)
    nodes[OUTPUT] = nir.Output(output_type={"output": np.array([linear.out_features])})
    edges.append((last, OUTPUT))
    population = linear.out_features // out_layer.num_classes
    metadata = {
        "producer": "snn-study (python -m study.export)",
        "dt": DT,
        "num_steps": hp.num_steps,
        "input_shape": np.array(input_shape),
        "input": f"one [C, H, W] frame per time step: {what_it_sees(kind, True, hp)}",
        "readout": out_layer.readout,
        "output": (
            "spikes of the output neurons; a class's score is its neurons' spike count over the T steps"
            if out_layer.fires
            else f"membrane of the output neurons (they never fire); a class's score is its neurons' membrane "
            f"{'averaged over' if out_layer.readout == 'membrane_mean' else 'maximum over'} the T steps"
        ),
        "num_classes": out_layer.num_classes,
        "population": population,
        "output_class": np.arange(linear.out_features) // population,  # output neuron i belongs to class i // population
        "reset": (
            "to zero at a spike (NIR's LIF, v_reset 0)" if hp.reset == "zero"
            else "subtract the threshold one step after a spike (Threshold -> Scale(-threshold) -> LI)"
        ),
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def spike_node(graph: nir.NIRGraph, layer: str) -> str:
    """The node whose output is the spikes of the model's leaky layer `layer` (a name in `spike_layers`, or
    OUTPUT_LAYER): its Threshold (subtractive reset) or its LIF (reset to zero)."""
    return f"{layer}_fire" if f"{layer}_fire" in graph.nodes else layer


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)
