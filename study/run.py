"""Command line: `python -m study.run DATASET [--arch ARCH] [options]` runs one hyperparameter study.

Exit status: 0 on success, 2 on bad input or a missing resource (one-paragraph message, no traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from study.cli import count, gpu_share, report, retries, share
from study.config import StudySettings
from study.data import data_root, is_synthetic
from study.data.events import event_store
from study.data.synthetic import ensure_synthetic
from study.errors import UserError
from study.experiment import STUDY_FILE, check_new, check_storage_writable, load_study, save_study
from study.precision import PRECISIONS
from study.registry import ARCHITECTURES, DATASETS

# --smoke: a whole study on tiny subsets, about a minute on 2 CPU cores.
SMOKE = {"num_samples": 2, "max_epochs": 2, "train_limit": 200, "val_limit": 50, "test_limit": 50}
DEFAULTS = {"num_samples": 20, "max_epochs": 10, "train_limit": None, "val_limit": None, "test_limit": None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m study.run",
        description="Tune spiking and conventional networks on a vision dataset with Ray Tune (ASHA + Optuna TPE).",
    )
    parser.add_argument("dataset", choices=sorted(DATASETS), help="dataset to study")
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), help="architecture (default: mnist->cnn, nmnist->scnn, dvsgesture->scnn)")
    parser.add_argument("--num-samples", type=count, help="trials to run (default 20; --smoke: 2)")
    parser.add_argument("--max-epochs", type=count, help="epochs per trial at most; ASHA stops poor trials sooner (default 10; --smoke: 2)")
    parser.add_argument("--max-concurrent", type=count, help="trials running at once (default: as many as fit the cluster's CPUs and GPUs)")
    parser.add_argument("--cpus-per-trial", type=share, default=1.0, help="CPUs per trial; also its torch threads (default 1)")
    parser.add_argument("--gpus-per-trial", type=gpu_share, help="GPUs per trial, fractions allowed (default: 1 when the cluster has GPUs, else 0)")
    parser.add_argument("--address", help="join an existing Ray cluster (e.g. 'auto' or HOST:6379) instead of starting a local one")
    parser.add_argument("--storage", default="results", help="where Ray stores the experiment: a path (shared on multi-node clusters) or a URI (default ./results)")
    parser.add_argument("--name", help="experiment name (default DATASET-ARCH, with -synthetic for --synthetic)")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="dataset root; downloads land here when absent (default ./data)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the Optuna sampler and of weight initialisation (default 0)")
    parser.add_argument("--checkpoints-dir", type=Path, default=Path("checkpoints"), help="where the best model is exported (default ./checkpoints)")
    parser.add_argument("--resume", action="store_true", help="continue the experiment NAME with the settings it was started with (its study.json)")
    parser.add_argument("--smoke", action="store_true", help="a whole study on tiny subsets, about a minute on 2 CPU cores")
    parser.add_argument("--synthetic", action="store_true", help="generate a small data set in the real on-disk format under DATA_DIR/synthetic and use it")
    parser.add_argument("--train-limit", type=count, help="class-balanced subset of the training set, in samples")
    parser.add_argument("--val-limit", type=count, help="class-balanced subset of the validation set, in samples")
    parser.add_argument("--test-limit", type=count, help="class-balanced subset of the test set, in samples")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="fp32, or bf16 autocast; auto: bf16 where the trial's GPU or CPU computes bf16 natively, else fp32 (default auto)",
    )
    parser.add_argument("--max-failures", type=retries, default=1, help="retries of a trial that raised, from its last checkpoint (default 1)")
    parser.add_argument("--dashboard-host", default="127.0.0.1", help="interface of the Ray dashboard of a local cluster (default 127.0.0.1: private)")
    return parser


@dataclass(frozen=True)
class Invocation:
    settings: StudySettings
    name: str
    storage: str
    num_samples: int
    gpus_per_trial: float | None
    max_concurrent: int | None
    max_failures: int
    checkpoints_dir: Path


def interpret(args: argparse.Namespace) -> Invocation:
    """Arguments -> typed settings, with --smoke defaults where the user gave no value."""
    defaults = SMOKE if args.smoke else DEFAULTS
    chosen = {key: getattr(args, key) if getattr(args, key) is not None else default for key, default in defaults.items()}
    arch = args.arch or DATASETS[args.dataset].default_arch
    if args.data_dir.exists() and not args.data_dir.is_dir():
        raise UserError(f"--data-dir {args.data_dir} is a file; it must be a folder (it is created if absent).")
    settings = StudySettings(
        dataset=args.dataset,
        arch=arch,
        data_dir=args.data_dir.resolve(),
        max_epochs=chosen["max_epochs"],
        seed=args.seed,
        synthetic=args.synthetic,
        train_limit=chosen["train_limit"],
        val_limit=chosen["val_limit"],
        test_limit=chosen["test_limit"],
        cpus_per_trial=args.cpus_per_trial,
        precision=args.precision,
    )
    storage = args.storage if "://" in args.storage else str(Path(args.storage).resolve())
    name = args.name or f"{args.dataset}-{arch}" + ("-synthetic" if args.synthetic else "")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UserError(f"--name {name!r}: use letters, digits, '.', '_' and '-' only (it names a folder under --storage).")
    return Invocation(
        settings=settings,
        name=name,
        storage=storage,
        num_samples=chosen["num_samples"],
        gpus_per_trial=args.gpus_per_trial,
        max_concurrent=args.max_concurrent,
        max_failures=args.max_failures,
        checkpoints_dir=args.checkpoints_dir.resolve(),
    )


def prepare_data(settings: StudySettings, splits: tuple[bool, ...] = (True, False)) -> None:
    """Generate (--synthetic) or download the data, and decode event streams, before any trial starts:
    a missing or damaged data set fails here, once, and no trial waits on another to decode.

    `splits`: which to open (True: training, False: test). The synthetic generator is deterministic,
    so regenerated synthetic data is the data a synthetic model was trained on.
    """
    entry = DATASETS[settings.dataset]
    root = data_root(settings.data_dir, settings.synthetic)
    if not settings.synthetic and is_synthetic(root):
        raise UserError(f"{root} holds synthetic data; use --synthetic with it, or point --data-dir at real data.")
    if settings.synthetic:
        ensure_synthetic(settings.dataset, root, entry.write_synthetic, *entry.synthetic_per_class)
    for train in splits:
        split = entry.source.open(root, train=train)
        if entry.source.kind == "events":
            event_store(entry.source, split, root / "cache")


def _auth_token_available() -> bool:
    """Whether Ray can find an authentication token (the places Ray itself looks)."""
    return bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")) or (
        Path.home() / ".ray" / "auth_token"
    ).is_file()


# Every worker of the study, trial or idle, exits quietly when Ray stops it (see study.worker_signals).
WORKER_SETUP = {"worker_process_setup_hook": "study.worker_signals.exit_quietly_on_sigterm"}


def connect_ray(address: str | None, dashboard_host: str) -> None:
    """Join a cluster, or start a local Ray with its dashboard (an already running Ray is reused)."""
    import ray

    if ray.is_initialized():
        return
    if address:
        try:
            ray.init(address=address, runtime_env=WORKER_SETUP)
        except ConnectionError as error:
            raise UserError(f"Cannot join the Ray cluster at {address}: {error}") from None
        return
    context = ray.init(include_dashboard=True, dashboard_host=dashboard_host, runtime_env=WORKER_SETUP)
    if context.dashboard_url:
        print(f"Ray dashboard: http://{context.dashboard_url}", flush=True)


def check_resources(invocation: Invocation) -> tuple[float, int]:
    """(GPUs per trial, trials at once), after checking that one trial fits the cluster (Ray would wait forever)."""
    import ray

    available = ray.cluster_resources()
    # A trial runs on one node: it must fit the largest one, not the cluster's total.
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    largest = {kind: max((node.get(kind, 0) for node in nodes), default=0) for kind in ("CPU", "GPU")}
    gpus = invocation.gpus_per_trial
    if gpus is None:
        gpus = 1.0 if largest["GPU"] >= 1 else 0.0
    if gpus > largest["GPU"]:
        raise UserError(f"--gpus-per-trial {gpus:g} asks for more GPUs than any node of the Ray cluster has ({largest['GPU']:g}).")
    cpus = invocation.settings.cpus_per_trial
    if cpus > largest["CPU"]:
        raise UserError(f"--cpus-per-trial {cpus:g} asks for more CPUs than any node of the Ray cluster has ({largest['CPU']:g}).")
    if invocation.max_concurrent is not None:
        return gpus, invocation.max_concurrent
    fits = available["CPU"] // cpus
    if gpus:
        fits = min(fits, available["GPU"] // gpus)
    return gpus, max(1, int(fits))


def to_record(invocation: Invocation) -> dict:
    """What study.json keeps of an invocation (plain JSON)."""
    return json.loads(json.dumps(dataclasses.asdict(invocation), default=str))


def from_record(record: dict) -> Invocation:
    settings = {**record["settings"], "data_dir": Path(record["settings"]["data_dir"])}
    return Invocation(**{**record, "settings": StudySettings(**settings), "checkpoints_dir": Path(record["checkpoints_dir"])})


def resumed(asked: Invocation) -> Invocation:
    """The invocation an experiment was started with: --resume continues the same study, whatever else is given."""
    started = from_record(load_study(asked.storage, asked.name))
    if started.settings.dataset != asked.settings.dataset:
        raise UserError(f"The experiment {asked.name!r} studies {started.settings.dataset}, not {asked.settings.dataset}.")
    print(f"Resuming {asked.name!r} with the settings it was started with ({STUDY_FILE}).", flush=True)
    return dataclasses.replace(started, storage=asked.storage)


def run_study(invocation: Invocation, resume: bool, address: str | None, dashboard_host: str) -> dict | None:
    """Run (or continue) a study; returns its summary, or None when it was interrupted before the end."""
    from study.outcome import conclude, results_table
    from study.tuning import TunePlan, build_tuner, restore_tuner

    check_storage_writable(invocation.storage)
    if resume:
        invocation = resumed(invocation)
    else:
        check_new(invocation.storage, invocation.name)
        exported = invocation.checkpoints_dir / invocation.name / "best.pth"
        if exported.exists():
            raise UserError(
                f"{exported} exists, from an earlier study named {invocation.name!r}. Choose another --name "
                f"(or move that file away); nothing was changed."
            )
    settings = invocation.settings
    prepare_data(settings)
    connect_ray(address, dashboard_host)
    gpus_per_trial, max_concurrent = check_resources(invocation)
    plan = TunePlan(
        name=invocation.name,
        storage=invocation.storage,
        num_samples=invocation.num_samples,
        gpus_per_trial=gpus_per_trial,
        max_concurrent=max_concurrent,
        max_failures=invocation.max_failures,
    )
    if not resume:
        save_study(invocation.storage, invocation.name, to_record(invocation))
    tuner = restore_tuner(settings, plan) if resume else build_tuner(settings, plan)
    with graceful_sigterm():
        results = tuner.fit()
    if results.num_terminated + results.num_errors < len(results) or len(results) < plan.num_samples:
        print(
            f"The study was interrupted; its state is saved. Continue it with:\n"
            f"  python -m study.run {settings.dataset} --name {plan.name} --storage {plan.storage} --resume",
            flush=True,
        )
        return None
    summary = conclude(results, settings, plan, invocation.checkpoints_dir)
    print(results_table(summary), flush=True)
    require_a_model(summary, plan.name)
    return summary


def require_a_model(summary: dict, name: str) -> None:
    """A UserError naming the first trial error when no trial of the study finished an epoch."""
    if summary["best"] is None:
        errors = [trial["error"] for trial in summary["trials"] if trial["error"]]
        reason = f" The first error: {errors[0].strip().splitlines()[-1]}" if errors else ""
        raise UserError(f"No trial of {name!r} finished an epoch, so there is no model to test or export.{reason}")


def _stop_gracefully(signum, frame) -> None:
    """SIGTERM: let Ray Tune stop and save the experiment as on Ctrl-C (its SIGUSR1 handler), else interrupt."""
    tune_handler = signal.getsignal(signal.SIGUSR1)
    if callable(tune_handler):
        tune_handler(signum, frame)
    else:
        raise KeyboardInterrupt


@contextlib.contextmanager
def graceful_sigterm():
    """SIGTERM stops the study as Ctrl-C does. Installed after ray.init, whose own handler aborts the driver."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _stop_gracefully)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.address and "RAY_AUTH_MODE" not in os.environ and _auth_token_available():
        # Ray 2.59+ `ray start --head` turns token authentication on when a token file exists, but
        # ray.init(address=...) sends no token unless RAY_AUTH_MODE=token (it waits 20 s, then fails).
        # Ray reads the mode once, so it is set before anything imports ray; a token-mode client
        # also joins clusters that run without authentication.
        os.environ["RAY_AUTH_MODE"] = "token"
    try:
        summary = run_study(interpret(args), args.resume, args.address, args.dashboard_host)
    except UserError as error:
        return report(error)
    except KeyboardInterrupt:
        print("Interrupted. A study that had started continues with --resume.", file=sys.stderr)
        return 130
    return 0 if summary is not None else 130


if __name__ == "__main__":
    sys.exit(main())
