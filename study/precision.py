"""Numeric precision of a trial: fp32, or bf16 autocast.

bf16 autocast runs convolutions and linear layers in bfloat16 (fp32 accumulation); the LIF
membranes stay fp32 (`lif_scan` integrates in fp32) and spikes are 0/1, exact in any precision.
"auto" picks bf16 where the hardware computes it natively: a CUDA GPU that supports it, or a CPU
with AVX-512 BF16 / AMX (training steps up to 1.5x faster there, docs/benchmarks.md; validation
accuracy within the test's tolerance of fp32, tests/test_training.py). Elsewhere bf16 would be
emulated and slower, so "auto" stays with fp32.
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device | str) -> bool:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:  # a private probe, but the one torch itself uses to decide on oneDNN's bf16 kernels
        return device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        return False


def resolve(precision: str, device: torch.device | str) -> str:
    """"fp32" or "bf16" for `precision` (one of PRECISIONS) on `device`."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """The forward pass's context: bf16 autocast, or nothing for fp32. `precision` must be resolved."""
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
