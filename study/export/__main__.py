"""`python -m study.export CHECKPOINT [--out DIR]`: write a best model in its ecosystem's format.

A spiking CNN becomes a NIR graph (`.nir`, for neuromorphic hardware and simulators), the CNN an
ONNX model (`.onnx`); each file is read back and checked against the model before it takes its
name. Exit status 2 on bad input (not this tool's checkpoint, a network NIR cannot express, an
output folder that cannot be written), before anything is written; 1 if the check fails.
Imports neither Ray Tune nor Optuna.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from study.cli import nonempty_path, print_error
from study.errors import UserError
from study.export import RoundTripError, export_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m study.export", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=nonempty_path, help="a .pth file written by the study (e.g. checkpoints/NAME/scnn/best.pth)")
    parser.add_argument("--out", type=nonempty_path, help="folder to write into (default: the checkpoint's folder)")
    args = parser.parse_args(argv)
    try:
        exported = export_checkpoint(args.checkpoint, args.out)
    except UserError as error:
        return print_error(error)
    except RoundTripError as error:
        print(f"error: the export failed its check, nothing was written: {error}", file=sys.stderr)
        return 1
    print(f"{exported.path}: {exported.format}; {exported.check}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
