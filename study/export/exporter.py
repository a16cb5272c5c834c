"""From a checkpoint to a file in its ecosystem's format, checked by reading it back before it takes its name.

Spiking CNNs become NIR graphs (`study.export.nir_graph`), the conventional CNN an ONNX model
(`study.export.onnx_model`). Every input is checked (checkpoint, expressibility, output folder)
before anything is written; the file is written under a temporary name, read back and run
beside the model on a seeded random input, and only renamed to its final name when both agree.
A spiking model's check input is scaled up until its output layer fires; where it never does
(an untrained network, say), the check compares the hidden layers' spikes and the output membrane
and says that no output spike was compared.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nir
import torch

from study.checkpoint import EXPORT_SUFFIXES, load_model
from study.config import Hyperparams
from study.export import nir_reader
from study.export.nir_graph import OUTPUT_LAYER, folded_copy, nir_graph, spike_node
from study.export.onnx_model import ATOL, RTOL, onnx_bytes, properties, run_onnx
from study.files import replaced_atomically
from study.models.common import OUTPUT_SPIKES, Output
from study.registry import ARCHITECTURES, DATASETS, model_input_shape
from study.writable import check_writable_file

CHECK_BATCH, CHECK_SEED = 4, 0
# Gains tried in turn on the check input until the model's output layer fires (see _check_run).
CHECK_GAINS = (1, 2, 4, 8, 16, 32, 64)
# Output membranes agree to float32 rounding: BatchNorm and the input scale are folded into weights, so sums round differently.
MEMBRANE_RTOL, MEMBRANE_ATOL = 1e-4, 1e-5


class RoundTripError(Exception):
    """The file read back does not compute what the model does: a bug in the export, not bad input."""


@dataclass(frozen=True)
class Exported:
    path: Path
    format: str  # "NIR" or "ONNX"
    check: str  # the round trip that was passed, in words


def exported_path(checkpoint: Path, arch: str, out_dir: Path | None) -> Path:
    """`<out_dir or the checkpoint's folder>/<checkpoint stem>.nir|.onnx`, e.g. checkpoints/NAME/scnn/best.nir."""
    folder = Path(out_dir) if out_dir is not None else Path(checkpoint).parent
    return folder / (Path(checkpoint).stem + EXPORT_SUFFIXES[ARCHITECTURES[arch].spiking])


def exported_files(checkpoint: Path) -> list[Path]:
    """The exports that exist beside a checkpoint (what `python -m study.export CHECKPOINT` wrote there)."""
    return [path for suffix in EXPORT_SUFFIXES.values() if (path := Path(checkpoint).with_suffix(suffix)).is_file()]


@contextlib.contextmanager
def _writing(target: Path) -> Iterator[Path]:
    """A temporary path that becomes `target` when the block succeeds; folders it had to create are removed if it fails."""
    created = [folder for folder in (target.parent, *target.parent.parents) if not folder.exists()]  # innermost first
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with replaced_atomically(target) as partial:
            yield partial
    except BaseException:
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _check_input(shape: tuple[int, ...]) -> torch.Tensor:
    generator = torch.Generator().manual_seed(CHECK_SEED)
    return (torch.rand(*shape, generator=generator) < 0.3).float()


@dataclass(frozen=True)
class CheckRun:
    """The input the round trip runs on, `[T, B, C, H, W]`, the gain it was scaled by, and the folded model's pass on it."""

    x: torch.Tensor
    gain: float
    expected: Output
    output_spikes: int  # the model's output spikes on `x` (0 for a membrane readout, whose outputs never fire)


def _check_run(folded, shape: tuple[int, ...]) -> CheckRun:
    """The check input: the seeded random spikes times the first gain of CHECK_GAINS at which the output layer fires.
    An untrained or quiet network may emit no output spike on the first input, and comparing zero spikes with zero
    spikes checks nothing. Where no gain makes it fire, the lowest gain at which every hidden layer fires (else the
    highest): the hidden layers' spikes and the output membrane are compared there instead."""
    base, hidden_firing, run = _check_input(shape), None, None
    gains = CHECK_GAINS if folded.output_layer.fires else CHECK_GAINS[:1]  # a membrane readout has no spike to look for
    with torch.no_grad():
        for gain in gains:
            x = base * gain
            expected = folded.run(x)
            spikes = int(expected.spikes[OUTPUT_SPIKES].sum()) if folded.output_layer.fires else 0
            run = CheckRun(x, gain, expected, spikes)
            if spikes or not folded.output_layer.fires:
                return run
            if hidden_firing is None and all(expected.spikes[layer].any() for layer in folded.spike_layers):
                hidden_firing = run
    return hidden_firing or run


def _differ(how: str, which: str, spikes: torch.Tensor, expected: torch.Tensor) -> RoundTripError:
    """'the NIR graph read back from best.nir differs from the model in 3 of 640 output spikes'."""
    return RoundTripError(f"the NIR graph {how} differs from the model in {int((spikes != expected).sum())} of {spikes.numel()} {which} spikes")


def _hidden_spikes_equal(graph: nir.NIRGraph, model, run: CheckRun, name: str) -> str:
    """Each hidden layer's spikes as the graph read back computes them against the model's, input side first."""
    counts = []
    for layer in model.spike_layers:
        expected = run.expected.spikes[layer]
        spikes = nir_reader.run_over_time(nir_reader.to_torch(nir_reader.with_output_from(graph, spike_node(graph, layer))), run.x)
        if spikes.shape != expected.shape:
            raise RoundTripError(f"the NIR graph read back from {name} gives layer {layer}'s spikes the shape "
                                 f"{tuple(spikes.shape)}, the model {tuple(expected.shape)}")
        if not torch.equal(spikes, expected):
            raise _differ(f"read back from {name}", f"layer {layer}'s", spikes, expected)
        counts.append(f"{layer} {int(spikes.sum())}")
    return f"the hidden layers' spikes equal the model's ({', '.join(counts)} spikes)"


def _output_spikes_equal(graph: nir.NIRGraph, run: CheckRun, name: str) -> str:
    """The output spikes of the graph read back (and as snnTorch's importer reads a graph of LIF neurons) against the model's."""
    expected = run.expected.spikes[OUTPUT_SPIKES]
    readers = {"read back": nir_reader.run_over_time(nir_reader.to_torch(graph), run.x)}
    if nir_reader.snntorch_reads(graph):
        readers["read by snnTorch's import_from_nir"] = nir_reader.run_with_snntorch(graph, run.x)
    for reader, spikes in readers.items():
        if not torch.equal(spikes, expected):
            raise _differ(f"{reader} from {name}", "output", spikes, expected)
    return f"its output spikes equal the model's ({run.output_spikes} spikes; {' and '.join(readers)})"


def _output_membrane_equal(graph: nir.NIRGraph, membrane_node: str, run: CheckRun, name: str) -> None:
    membrane = nir_reader.run_over_time(nir_reader.to_torch(nir_reader.with_membrane_output(graph, membrane_node)), run.x)
    if not torch.allclose(membrane, run.expected.membrane, rtol=MEMBRANE_RTOL, atol=MEMBRANE_ATOL):
        gap = float((membrane - run.expected.membrane).abs().max())
        raise RoundTripError(f"the NIR graph read back from {name} differs from the model's output membrane by up to {gap:.3g}")


def _compare_nir(graph: nir.NIRGraph, model, run: CheckRun, name: str) -> str:
    """Run the graph read back on the check input against the model: its output spikes where the output layer fired
    and its output membrane where the graph has one. Where the output layer emitted no spike, the hidden layers'
    spikes and the output membrane instead, and the text says that no output spike was compared."""
    x = run.x
    silent = model.output_layer.fires and run.output_spikes == 0
    passed = []
    if silent:
        passed.append(_hidden_spikes_equal(graph, model, run, name))
    elif model.output_layer.fires:
        passed.append(_output_spikes_equal(graph, run, name))
    membrane_node = f"{OUTPUT_LAYER}_membrane" if f"{OUTPUT_LAYER}_membrane" in graph.nodes else OUTPUT_LAYER
    if membrane_node != OUTPUT_LAYER or silent:  # an output LIF's membrane is the LI's only while it does not fire
        _output_membrane_equal(graph, membrane_node, run, name)
        passed.append(f"{'the' if silent else 'its'} output membrane equals the model's to float rounding")
    if silent and nir_reader.snntorch_reads(graph):
        if nir_reader.run_with_snntorch(graph, x).any():
            raise RoundTripError(f"the NIR graph read by snnTorch's import_from_nir from {name} emits output spikes where the model emits none")
        passed.append("snnTorch's import_from_nir emits no output spike either")
    inputs = f"{CHECK_BATCH} random inputs of {x.shape[0]} steps"
    if run.gain != 1:
        inputs += f", scaled by {run.gain:g}" + ("" if silent else ", the first gain at which the output layer fires")
    if silent:
        return (f"read back; its output layer emitted no spike on any check input (random inputs scaled by {CHECK_GAINS[0]:g} "
                f"to {CHECK_GAINS[-1]:g}), so no output spike was compared: {', '.join(passed)} ({inputs})")
    return f"read back, {' and '.join(passed)} ({inputs})"


def _check_folding(model, folded, x: torch.Tensor) -> None:
    """Each block of `folded` makes the current the model's block makes (BatchNorm and input scale folded in),
    to float rounding, from the spikes the model's previous layer emitted on `x` `[T, B, C, H, W]`."""
    with torch.no_grad():
        spikes = model.run(x).spikes
        inputs = [model.scale_input(x), *(spikes[layer] for layer in model.spike_layers[:-1])]  # what each block receives
        for index, (block, ours, fed) in enumerate(zip(model.blocks, folded.blocks, inputs)):
            current, folded_current = block.over_time(fed), ours.over_time(x if index == 0 else fed)
            if not torch.allclose(folded_current, current, rtol=MEMBRANE_RTOL, atol=MEMBRANE_ATOL):
                gap = float((folded_current - current).abs().max())
                raise RoundTripError(f"folding BatchNorm and the input scale into block {index + 1} changes its current by up to {gap:.3g}")


@dataclass(frozen=True)
class Exportable:
    """A checkpoint's model as the export takes it: in float32 eval mode, with its NIR graph if it is spiking."""

    model: torch.nn.Module
    payload: dict
    hp: Hyperparams
    input_shape: tuple[int, ...]  # one step's [C, H, W]
    graph: nir.NIRGraph | None  # None for the CNN (ONNX)


def exportable(checkpoint: Path) -> Exportable:
    """The export's checks of the checkpoint itself: a UserError when it is not this tool's checkpoint, or when
    NIR cannot express its network (the spiking LSTM, max pooling, a decay of 1). The report asks this too."""
    model, payload = load_model(checkpoint)
    hp = Hyperparams.from_dict(payload["hyperparams"])
    input_shape = model_input_shape(payload["dataset"], payload["arch"], hp)
    model = model.float().eval()
    graph = None
    if ARCHITECTURES[payload["arch"]].spiking:
        graph = nir_graph(model, input_shape, hp, DATASETS[payload["dataset"]].source.kind)
    return Exportable(model, payload, hp, input_shape, graph)


def _write_nir(ready: Exportable, target: Path) -> Exported:
    # The graph is compared with the model as the graph holds it (weights folded), so that a neuron that
    # rounding puts exactly at its threshold cannot fail a correct export; the folding is checked on its own.
    folded = folded_copy(ready.model)
    run = _check_run(folded, (ready.hp.num_steps, CHECK_BATCH, *ready.input_shape))  # x: [T, B, C, H, W]
    _check_folding(ready.model, folded, run.x)
    with _writing(target) as partial:
        nir.write(str(partial), ready.graph)
        check = _compare_nir(nir_reader.read_graph(partial), folded, run, target.name)
    if not nir_reader.snntorch_reads(ready.graph):
        check += (". Importers that map only NIR's neuron nodes (snnTorch's import_from_nir) cannot read its LI, Threshold "
                  "and Scale nodes: a network trained with --fix reset=zero --fix readout=spikes exports as LIF nodes")
    return Exported(target, "NIR", check)


def _write_onnx(ready: Exportable, target: Path) -> Exported:
    dataset = ready.payload["dataset"]
    source = DATASETS[dataset].source
    model_bytes = onnx_bytes(ready.model, ready.input_shape, properties(dataset, source.kind, ready.hp, source.num_classes))
    x = torch.rand(CHECK_BATCH, *ready.input_shape, generator=torch.Generator().manual_seed(CHECK_SEED))
    with torch.no_grad():
        expected = ready.model(x).numpy()
    with _writing(target) as partial:
        partial.write_bytes(model_bytes)
        logits = run_onnx(partial.read_bytes(), x.numpy())
        if logits.shape != expected.shape:
            raise RoundTripError(f"onnxruntime's logits for {target.name} have shape {logits.shape}, the model's {expected.shape}")
        if not torch.allclose(torch.from_numpy(logits), torch.from_numpy(expected), rtol=RTOL, atol=ATOL):
            raise RoundTripError(f"onnxruntime's logits for {target.name} differ from the model's (up to {abs(logits - expected).max():.3g})")
    gap = float(abs(logits - expected).max())
    return Exported(target, "ONNX", f"run by onnxruntime, its logits equal the model's within {gap:.1g} ({CHECK_BATCH} random inputs)")


def export_checkpoint(checkpoint: Path, out_dir: Path | None = None) -> Exported:
    """Write `checkpoint`'s model as NIR (spiking CNN) or ONNX (CNN); a UserError on bad input, before any file is written."""
    ready = exportable(checkpoint)
    target = exported_path(checkpoint, ready.payload["arch"], out_dir)
    check_writable_file(target, "The export" if out_dir is None else "--out")
    return _write_nir(ready, target) if ready.graph is not None else _write_onnx(ready, target)
