"""From a checkpoint to a file in its ecosystem's format, checked by reading it back before it takes its name.

Spiking CNNs become NIR graphs (`study.export.nir_graph`), the conventional CNN an ONNX model
(`study.export.onnx_model`). Every input is checked (checkpoint, expressibility, output folder)
before anything is written; the file is written under a temporary name, read back and run
beside the model on a seeded random input, and only renamed to its final name when both agree.
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
from study.export.nir_graph import OUTPUT_LAYER, folded_copy, nir_graph
from study.export.onnx_model import ATOL, RTOL, onnx_bytes, properties, run_onnx
from study.files import replaced_atomically
from study.models.common import OUTPUT_SPIKES
from study.registry import ARCHITECTURES, DATASETS, model_input_shape
from study.writable import check_writable_file

CHECK_BATCH, CHECK_SEED = 4, 0
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


def _compare_nir(graph: nir.NIRGraph, fires: bool, x: torch.Tensor, expected, name: str) -> str:
    """Run the graph read back on `x` `[T, B, ...]`: its output membrane (where the graph has one) and spikes (where
    the outputs fire) against the model's; a graph of LIF neurons also as snnTorch's importer reads it."""
    passed = []
    if (membrane_node := f"{OUTPUT_LAYER}_membrane") in graph.nodes:  # not in a LIF output layer: its output is spikes
        membrane = nir_reader.run_over_time(nir_reader.to_torch(nir_reader.with_output_from(graph, membrane_node)), x)
        if not torch.allclose(membrane, expected.membrane, rtol=MEMBRANE_RTOL, atol=MEMBRANE_ATOL):
            gap = float((membrane - expected.membrane).abs().max())
            raise RoundTripError(f"the NIR graph read back from {name} differs from the model's output membrane by up to {gap:.3g}")
        passed.append("its output membrane equals the model's to float rounding")
    if fires:
        expected_spikes = expected.spikes[OUTPUT_SPIKES]
        readers = {"read back": nir_reader.run_over_time(nir_reader.to_torch(graph), x)}
        if nir_reader.snntorch_reads(graph):
            readers["read by snnTorch's import_from_nir"] = nir_reader.run_with_snntorch(graph, x)
        for reader, spikes in readers.items():
            if not torch.equal(spikes, expected_spikes):
                differ = int((spikes != expected_spikes).sum())
                raise RoundTripError(f"the NIR graph {reader} from {name} differs from the model in {differ} of {spikes.numel()} output spikes")
        passed.insert(0, f"its output spikes equal the model's ({int(expected_spikes.sum())} spikes; {' and '.join(readers)})")
    return f"read back, {' and '.join(passed)} ({CHECK_BATCH} random inputs of {x.shape[0]} steps)"


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


def _write_nir(model, payload: dict, hp: Hyperparams, input_shape, target: Path) -> Exported:
    kind = DATASETS[payload["dataset"]].source.kind
    graph = nir_graph(model, input_shape, hp, kind)  # UserError where NIR cannot express the network
    x = _check_input((hp.num_steps, CHECK_BATCH, *input_shape))  # [T, B, C, H, W]
    # The graph is compared with the model as the graph holds it (weights folded), so that a neuron that
    # rounding puts exactly at its threshold cannot fail a correct export; the folding is checked on its own.
    folded = folded_copy(model)
    _check_folding(model, folded, x)
    with torch.no_grad():
        expected = folded.run(x)
    with _writing(target) as partial:
        nir.write(str(partial), graph)
        check = _compare_nir(nir_reader.read_graph(partial), model.output_layer.fires, x, expected, target.name)
    if not nir_reader.snntorch_reads(graph):
        check += (". Importers that map only NIR's neuron nodes (snnTorch's import_from_nir) cannot read its LI, Threshold "
                  "and Scale nodes: a network trained with --fix reset=zero --fix readout=spikes exports as LIF nodes")
    return Exported(target, "NIR", check)


def _write_onnx(model, payload: dict, hp: Hyperparams, input_shape, target: Path) -> Exported:
    source = DATASETS[payload["dataset"]].source
    model_bytes = onnx_bytes(model, input_shape, properties(payload["dataset"], source.kind, hp, source.num_classes))
    x = torch.rand(CHECK_BATCH, *input_shape, generator=torch.Generator().manual_seed(CHECK_SEED))
    with torch.no_grad():
        expected = model(x).numpy()
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
    model, payload = load_model(checkpoint)  # UserError: not this tool's checkpoint
    target = exported_path(checkpoint, payload["arch"], out_dir)
    check_writable_file(target, "The export" if out_dir is None else "--out")
    hp = Hyperparams.from_dict(payload["hyperparams"])
    input_shape = model_input_shape(payload["dataset"], payload["arch"], hp)
    model = model.float().eval()
    write = _write_nir if ARCHITECTURES[payload["arch"]].spiking else _write_onnx
    return write(model, payload, hp, input_shape, target)
