"""`python -m study.evaluate CHECKPOINT`: test an exported model on its dataset's test split.

The checkpoint says which dataset and architecture it belongs to; exit status 2 when the file is
not a usable checkpoint (another layout, weights that do not fit its architecture, a pickle);
130 when interrupted (Ctrl-C).
By default it uses the data folder and the test subset of the study that wrote it (found through
its experiment folder, as analysis.gradcam does), so it reproduces the study's test_acc.
Imports neither Ray Tune, Optuna nor pyarrow: testing one model needs only torch and the data.
"""

from __future__ import annotations

import argparse
import sys

from study.checkpoint import load_model
from study.cli import count, nonempty_path, print_error, print_interrupted
from study.data.splits import check_limit
from study.errors import UserError
from study.final_test import checkpoint_test_split, final_test
from study.loop import pick_device
from study.naming import model_on_data
from study.origin import checkpoint_data_dir, experiment_test_limit
from study.registry import DATASETS


def _number(value: float | None) -> str:
    return "not finite" if value is None else f"{value:.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m study.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=nonempty_path, help="a .pth file written by the study (e.g. checkpoints/NAME/best.pth)")
    parser.add_argument("--data-dir", type=nonempty_path, help="dataset root (default: the study's own, found beside the checkpoint, else ./data)")
    parser.add_argument("--test-limit", type=count, help="class-balanced subset of the test split, in samples (default: the study's own)")
    args = parser.parse_args(argv)
    try:
        device = pick_device()
        model, payload = load_model(args.checkpoint, device)
        data_dir = checkpoint_data_dir(args.checkpoint, args.data_dir)
        test_limit = args.test_limit or experiment_test_limit(args.checkpoint)
        check_limit("--test-limit", test_limit, DATASETS[payload["dataset"]].source.num_classes, payload["dataset"])
        settings, hp, test_set = checkpoint_test_split(payload, data_dir, test_limit)
        result = final_test(settings, model, hp, device, test_set)
    except UserError as error:
        return print_error(error)
    except KeyboardInterrupt:  # Ctrl-C: one line, as study.run says it, not a traceback
        return print_interrupted("nothing was tested.")
    print(
        f"{args.checkpoint}: {model_on_data(settings.arch, settings.dataset, settings.synthetic)}: test_acc {result.test_acc:.4f}, "
        f"test_loss {_number(result.test_loss)} over {result.test_samples} test samples from {settings.data_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
