"""`python -m study.evaluate CHECKPOINT`: test an exported model on its dataset's test split.

The checkpoint says which dataset and architecture it belongs to; exit status 2 when the file is
not a usable checkpoint (another layout, weights that do not fit its architecture, a pickle).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from study.checkpoint import load_model
from study.cli import count, report
from study.config import Hyperparams, StudySettings
from study.errors import UserError
from study.outcome import evaluate_on_test_split
from study.run import prepare_data
from study.trainable import pick_device


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m study.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a .pth file written by the study (e.g. checkpoints/NAME/best.pth)")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="dataset root (default ./data)")
    parser.add_argument("--test-limit", type=count, help="class-balanced subset of the test split, in samples")
    args = parser.parse_args(argv)
    try:
        device = pick_device()
        model, payload = load_model(args.checkpoint, device)
        settings = StudySettings(
            dataset=payload["dataset"],
            arch=payload["arch"],
            data_dir=args.data_dir.resolve(),
            max_epochs=1,
            synthetic=bool(payload.get("synthetic", False)),
            test_limit=args.test_limit,
        )
        prepare_data(settings, splits=(False,))
        result = evaluate_on_test_split(settings, model, Hyperparams.from_dict(payload["hyperparams"]), device)
    except UserError as error:
        return report(error)
    synthetic = " (synthetic data)" if settings.synthetic else ""
    print(
        f"{args.checkpoint}: {settings.arch} on {settings.dataset}{synthetic}: test_acc {result['test_acc']:.4f}, "
        f"test_loss {result['test_loss']:.4f} over {result['test_samples']} samples"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
