"""Numeric precision of a trial: fp32, or bf16 autocast.

bf16 autocast runs convolutions and linear layers in bfloat16 (fp32 accumulation); the LIF
membranes stay fp32 (`lif_scan` integrates in fp32) and spikes are 0/1, exact in any precision.
"auto" is bf16 on a CUDA GPU that supports it and fp32 on CPUs: on this project's small
convolutions CPU bf16 was no faster overall, even with AMX (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("auto", "fp32", "bf16")


def resolve(precision: str, device: torch.device | str) -> str:
    """"fp32" or "bf16" for `precision` (one of PRECISIONS) on `device`."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision == "auto":
        return "bf16" if torch.device(device).type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    return precision


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """The forward pass's context: bf16 autocast, or nothing for fp32. `precision` must be resolved."""
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
