"""The command line the per-checkpoint commands share (`analysis.gradcam`, `analysis.spikes`):
`python -m MODULE CHECKPOINT [--out DIR] [--samples N] [--data-dir DIR]`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from analysis.samples import Loaded, load_with_samples
from study.cli import count, nonempty_path, print_error
from study.errors import UserError
from study.registry import ARCHITECTURES
from study.writable import check_writable_folder

DEFAULT_SAMPLES = 30  # three per class on MNIST and N-MNIST


def default_out(checkpoint: Path, folder: str) -> Path:
    """reports/<study>/<arch>/<folder> for an exported checkpoints/<study>/<arch>/best.pth, else reports/<its folder>/<folder>."""
    parent = Path(checkpoint).resolve().parent
    if parent.name in ARCHITECTURES:
        return Path("reports") / parent.parent.name / parent.name / folder
    return Path("reports") / parent.name / folder


def run_cli(argv: list[str] | None, module: str, description: str, folder: str, make: Callable[[Loaded, Path], list]) -> int:
    """`python -m MODULE CHECKPOINT [--out DIR] [--samples N] [--data-dir DIR]`: write `make`'s files, print their paths.

    Exit status 2, with the reason, for a checkpoint or data set that cannot be used.
    """
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("checkpoint", type=nonempty_path, help="a .pth file written by the study (e.g. checkpoints/NAME/best.pth)")
    parser.add_argument("--out", type=nonempty_path, help=f"output folder (default reports/<the checkpoint's folder name>/{folder})")
    parser.add_argument("--samples", type=count, default=DEFAULT_SAMPLES, help=f"class-balanced test samples (default {DEFAULT_SAMPLES})")
    parser.add_argument("--data-dir", type=nonempty_path, help="dataset root (default: the study's own, found beside the checkpoint, else ./data)")
    args = parser.parse_args(argv)
    out = args.out or default_out(args.checkpoint, folder)
    try:
        check_writable_folder(out, "--out")
        artifacts = make(load_with_samples(args.checkpoint, args.samples, args.data_dir), out)
    except UserError as error:
        return print_error(error)
    for artifact in artifacts:
        print(artifact.path)
    return 0
