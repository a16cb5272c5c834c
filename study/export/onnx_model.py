"""The conventional CNN as an ONNX model, checked with onnxruntime before it is written.

torch's TorchScript-based exporter (`dynamo=False`) needs no onnxscript; in eval mode it folds
BatchNorm into the convolutions and drops dropout. The batch axis is dynamic. The `onnx` package
writes what the input is (preprocessing included) into the model's metadata and checks the model
(`onnx.checker`); onnxruntime runs it for the round-trip check.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import onnxruntime
import torch
from torch import nn

from study.data.encoding import what_it_sees

OPSET = 17  # onnxruntime 1.18 and later run it; the exporter's default in torch 2.x
INPUT, OUTPUT = "frames", "logits"
# Logits of ONNX Runtime and torch agree to float rounding (summation order differs in the convolutions).
RTOL, ATOL = 1e-4, 1e-5


def onnx_bytes(model: nn.Module, input_shape: tuple[int, int, int], properties: dict[str, str]) -> bytes:
    """The serialized ONNX model of `model` (in eval mode) for `[B, *input_shape]` inputs, with `properties` as metadata."""
    example = torch.zeros(1, *input_shape)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice: chosen on purpose (module docstring)
        torch.onnx.export(
            model, (example,), buffer, dynamo=False, opset_version=OPSET, input_names=[INPUT], output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
        )
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, properties)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def properties(dataset: str, kind: str, hp, num_classes: int) -> dict[str, str]:
    """What a reader of the file needs to feed it and read its output."""
    preprocessing = (
        "pixel bytes / 255" if kind == "static" else
        "log1p of the event counts of each time bin, the time bins' polarity frames stacked as channels [T*P, H, W]"
    )
    return {
        "producer": "snn-study (python -m study.export)",
        "dataset": dataset,
        "input": f"{INPUT} [batch, C, H, W], float32: {what_it_sees(kind, False, hp)}; preprocessing: {preprocessing}",
        "output": f"{OUTPUT} [batch, {num_classes}]: unnormalised class scores (argmax is the prediction)",
    }


def run_onnx(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return session.run([OUTPUT], {INPUT: x.astype(np.float32)})[0]
