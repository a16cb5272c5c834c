"""Command line: `python -m study.run DATASET [--arch ARCH] [options]` runs one hyperparameter study.

Exit status: 0 on success, 2 on bad input or a missing resource (one-paragraph message, no traceback),
130 when interrupted (the study's state is saved; the printed command resumes it).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shlex
import signal
import sys
import threading
from pathlib import Path

from study.cli import EXIT_INTERRUPTED, check_folder_name, count, gpu_share, nonempty_path, nonempty_text, print_error, retries, seed, share, typed_flags
from study.cluster import check_dashboard_host, check_reachable, connect_ray, trial_resources, use_token_to_join
from study.config import OBJECTIVES, STUDY_FILE, StudySettings
from study.data.prepare import prepare_data
from study.data.splits import check_limit
from study.driver_signals import interrupt, signal_handlers, tune_stops_on_sigterm
from study.errors import UserError
from study.invocation import DEFAULTS, SMOKE, Invocation, to_record
from study.naming import default_name
from study.precision import PRECISIONS
from study.registry import ARCHITECTURES, DATASETS, PRESETS
from study.resuming import resumed
from study.saved_state import check_restorable, every_trial_ended
from study.search import check_search, fixed_values
from study.storage import check_new, check_storage_writable, exists, one_driver, save_study
from study.summary import Summary
from study.writable import check_writable_folder

DEFAULT_CHECKPOINTS_DIR = Path("checkpoints")


def architectures(text: str) -> tuple[str, ...]:
    """--arch: one architecture or a comma-separated list of different ones."""
    names = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in names if name not in ARCHITECTURES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown architecture {unknown[0]!r}: choose from {', '.join(sorted(ARCHITECTURES))}")
    if len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(f"{text!r} names an architecture twice")
    return names


def objectives(text: str) -> tuple[str, ...]:
    """--objective: "accuracy", or "accuracy,energy" for the Pareto front of accuracy and estimated energy."""
    names = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in names if name not in OBJECTIVES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown objective {unknown[0]!r}: choose from {', '.join(OBJECTIVES)}")
    if names[0] != "accuracy" or len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give accuracy first, then energy if wanted, each once (ASHA stops trials on accuracy, so it always leads)"
        )
    return names


def _add_what_to_study(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("what to study")
    group.add_argument("dataset", choices=sorted(DATASETS), help="dataset to study")
    group.add_argument(
        "--arch", type=architectures, metavar="ARCH[,ARCH...]",
        help=f"architectures to compare, from {', '.join(sorted(ARCHITECTURES))} (default: cnn,scnn; on dvsgesture also slstm)",
    )
    group.add_argument("--seed", type=seed, default=0, help="seed of the Optuna sampler and of weight initialisation (default 0)")
    group.add_argument(
        "--objective", type=objectives, default=("accuracy",), metavar="accuracy[,energy]",
        help="what Optuna optimises: validation accuracy (default), or with ',energy' the Pareto front of accuracy and "
        "estimated energy per inference (ASHA still stops trials on accuracy)",
    )
    group.add_argument(
        "--preset",
        help=f"fix a named set of hyperparameters (capacity, T, ...) and search the rest: {', '.join(sorted(PRESETS))} (see README)",
    )
    group.add_argument(
        "--fix", action="append", default=[], metavar="NAME=VALUE",
        help="fix one hyperparameter instead of searching it, e.g. --fix readout=membrane_max (repeatable; wins over --preset)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m study.run",
        description="Tune spiking and conventional networks on a vision dataset with Ray Tune (ASHA + Optuna TPE).",
    )
    _add_what_to_study(parser)

    budget = parser.add_argument_group("budget")
    budget.add_argument("--num-samples", type=count, help="trials to run (default 20; --smoke: 2)")
    budget.add_argument("--max-epochs", type=count, help="epochs per trial at most; ASHA stops poor trials sooner (default 10; --smoke: 2)")
    budget.add_argument("--repeats", type=retries, help="after the searches, train each best configuration again with this many new seeds (default 3; --smoke: 2; 0 skips)")
    budget.add_argument("--smoke", action="store_true", help="a whole study on tiny subsets (2 trials, 2 epochs, 2 repeats, 200/50/50 samples)")

    data = parser.add_argument_group("data")
    data.add_argument("--data-dir", type=nonempty_path, default=Path("data"), help="dataset root; downloads land here when absent (default ./data)")
    data.add_argument("--synthetic", action="store_true", help="generate a small data set in the real on-disk format under DATA_DIR/synthetic and use it")
    data.add_argument("--train-limit", type=count, help="class-balanced subset of the training set, in samples")
    data.add_argument("--val-limit", type=count, help="class-balanced subset of the validation set, in samples")
    data.add_argument("--test-limit", type=count, help="class-balanced subset of the test set, in samples")

    resources = parser.add_argument_group("resources")
    resources.add_argument("--cpus-per-trial", type=share, default=1.0, help="CPUs per trial; also its torch threads (default 1)")
    resources.add_argument("--gpus-per-trial", type=gpu_share, help="GPUs per trial, fractions allowed (default: 1 when the cluster has GPUs, else 0)")
    resources.add_argument("--max-concurrent", type=count, help="trials running at once (default: as many as fit the cluster's CPUs and GPUs)")
    resources.add_argument("--max-failures", type=retries, default=1, help="retries of a trial that raised, from its last checkpoint (default 1)")

    training = parser.add_argument_group("precision and initialisation")
    training.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="fp32, or bf16 autocast; auto: bf16 where the trial's GPU or CPU computes bf16 natively, else fp32 (default auto)",
    )
    training.add_argument(
        "--no-calibration", dest="calibrate", action="store_false",
        help="spiking models: keep the initialisation as it is instead of setting input scale and layer gains from the first batch",
    )

    cluster = parser.add_argument_group("cluster and storage")
    cluster.add_argument("--address", help="join an existing Ray cluster (e.g. 'auto' or HOST:6379) instead of starting a local one")
    cluster.add_argument("--storage", type=nonempty_text, default="results", help="where Ray stores the experiment: a path (shared on multi-node clusters) or a URI (default ./results)")
    cluster.add_argument("--name", type=nonempty_text, help="experiment name (default DATASET-ARCH, with -synthetic for --synthetic)")
    cluster.add_argument("--checkpoints-dir", type=nonempty_path, help="where the best models are exported (default ./checkpoints; with --resume: the study's own)")
    cluster.add_argument("--dashboard-host", default="127.0.0.1", help="interface of the Ray dashboard of a local cluster (default 127.0.0.1: private)")

    resume = parser.add_argument_group("resume")
    resume.add_argument("--resume", action="store_true", help="continue the experiment NAME with the settings it was started with (its study.json)")
    return parser


def interpret(args: argparse.Namespace) -> Invocation:
    """Arguments -> typed settings, with --smoke defaults where the user gave no value."""
    defaults = SMOKE if args.smoke else DEFAULTS
    chosen = {key: getattr(args, key) if getattr(args, key) is not None else default for key, default in defaults.items()}
    archs = args.arch or DATASETS[args.dataset].compared
    classes = DATASETS[args.dataset].source.num_classes
    for split in ("train", "val", "test"):
        check_limit(f"--{split}-limit", chosen[f"{split}_limit"], classes, args.dataset)
    if args.data_dir.exists() and not args.data_dir.is_dir():
        raise UserError(f"--data-dir {args.data_dir} is a file; it must be a folder (it is created if absent).")
    settings = StudySettings(
        dataset=args.dataset,
        arch=archs[0],
        data_dir=args.data_dir.resolve(),
        max_epochs=chosen["max_epochs"],
        seed=args.seed,
        synthetic=args.synthetic,
        train_limit=chosen["train_limit"],
        val_limit=chosen["val_limit"],
        test_limit=chosen["test_limit"],
        cpus_per_trial=args.cpus_per_trial,
        precision=args.precision,
        calibrate=args.calibrate,
        objectives=args.objective,
    )
    storage = args.storage if "://" in args.storage else str(Path(args.storage).resolve())
    name = args.name or default_name(args.dataset, archs, args.synthetic)
    check_folder_name("--name", name, "--storage")
    return Invocation(
        settings=settings,
        name=name,
        storage=storage,
        num_samples=chosen["num_samples"],
        gpus_per_trial=args.gpus_per_trial,
        max_concurrent=args.max_concurrent,
        max_failures=args.max_failures,
        checkpoints_dir=(args.checkpoints_dir or DEFAULT_CHECKPOINTS_DIR).resolve(),
        preset=args.preset,
        fixed=fixed_values(args.dataset, args.preset, args.fix, tuple(archs)),
        archs=archs,
        repeats=chosen["repeats"],
    )


def check_can_start(invocation: Invocation) -> None:
    """A new study must not take over an experiment folder or exported models that exist."""
    check_new(invocation.storage, invocation.name)
    exported = invocation.checkpoints_dir / invocation.name
    if exported.exists():
        raise UserError(
            f"{exported} exists, from an earlier study named {invocation.name!r}. Choose another --name "
            f"(or move that folder away); nothing was changed."
        )


def plan_of(invocation: Invocation, gpus_per_trial: float, max_concurrent: int):
    from study.tuning import TunePlan

    return TunePlan(
        name=invocation.name,
        storage=invocation.storage,
        num_samples=invocation.num_samples,
        gpus_per_trial=gpus_per_trial,
        max_concurrent=max_concurrent,
        max_failures=invocation.max_failures,
        fixed=invocation.fixed,
        archs=invocation.archs,
        repeats=invocation.repeats,
    )


def fit(make_tuner, path: str, expected: int):
    """Run a phase's Tuner (its experiment at `path`); its results, or None when it was interrupted before
    every trial ended on its own.

    The results alone cannot tell: on an interruption Ray Tune marks the trials it stops TERMINATED,
    as if they had finished. The state it saved before stopping them still has them running.
    """
    with tune_stops_on_sigterm():
        results = make_tuner().fit()
    if results.num_terminated + results.num_errors < len(results) or len(results) < expected:
        return None
    return results if every_trial_ended(path, expected) else None


def run_study(
    invocation: Invocation, resume: bool, address: str | None, dashboard_host: str, checkpoints_dir: Path | None = None,
    typed: frozenset[str] = frozenset(),
) -> Summary | None:
    """Run (or continue) a study: the searches of every architecture at once, then the repeats of each best
    configuration; returns its summary, or None when it was interrupted before the end.

    `checkpoints_dir`: with `resume`, export there instead of where the study was started to; `typed`: the
    flags the user typed, checked against the study's with `resume`."""
    with contextlib.ExitStack() as driver:  # holds the experiment's lock for the whole run
        return _run_study(invocation, resume, address, dashboard_host, checkpoints_dir, typed, driver)


def _run_study(
    invocation: Invocation, resume: bool, address: str | None, dashboard_host: str, checkpoints_dir: Path | None,
    typed: frozenset[str], driver,
) -> Summary | None:
    from ray import tune

    from study.outcome import results_table, searched, summarize
    from study.repeats import repeat_configs
    from study.tuning import build_repeat_tuner, build_tuner, restore_tuner

    # The cluster first: a refused --address or --dashboard-host leaves nothing behind, not even the lock.
    check_reachable(address)
    check_dashboard_host(address, dashboard_host)
    check_storage_writable(invocation.storage)
    driver.enter_context(one_driver(invocation.storage, invocation.name))  # before the experiment is checked
    if resume:
        invocation = resumed(invocation, checkpoints_dir, typed)
    else:
        check_can_start(invocation)
    check_writable_folder(invocation.checkpoints_dir, "--checkpoints-dir")
    settings = invocation.settings
    for arch in invocation.archs:
        check_search(dataclasses.replace(settings, arch=arch), invocation.fixed)
    prepare_data(settings)
    connect_ray(address, dashboard_host)
    if threading.current_thread() is threading.main_thread():  # ray.init installed its own, which exits with no word
        signal.signal(signal.SIGTERM, interrupt)
    plan = plan_of(invocation, *trial_resources(settings.cpus_per_trial, invocation.gpus_per_trial, invocation.max_concurrent))
    if not resume:
        save_study(invocation.storage, invocation.name, to_record(invocation))
    search = fit(
        lambda: restore_tuner(plan.experiment_path, settings, plan) if resume else build_tuner(settings, plan),
        plan.experiment_path,
        plan.num_samples * len(plan.archs),
    )
    repeated = None
    if search is not None:
        architectures = searched(search, settings, plan.archs, invocation.checkpoints_dir / invocation.name)
        configs = repeat_configs(architectures, plan.repeats, settings.seed)
        if configs:
            restorable = tune.Tuner.can_restore(plan.repeats_path)
            if restorable:
                check_restorable(plan.repeats_path)
            repeated = fit(
                lambda: restore_tuner(plan.repeats_path, settings, plan) if restorable else build_repeat_tuner(settings, plan, configs),
                plan.repeats_path,
                len(configs),
            )
    if search is None or (plan.repeats and configs and repeated is None):
        return None
    summary = summarize(settings, invocation.experiment_path, architectures, repeated, plan.repeats)
    print(results_table(summary), flush=True)
    require_a_model(summary, plan.name)
    return summary


def require_a_model(summary: Summary, name: str) -> None:
    """A UserError naming the first trial error when no trial of the study finished an epoch."""
    if all(architecture.best is None for architecture in summary.architectures):
        errors = [trial.error for trial in summary.trials if trial.error]
        reason = f" The first error: {errors[0].strip().splitlines()[-1]}" if errors else ""
        raise UserError(f"No trial of {name!r} finished an epoch, so there is no model to test or export.{reason}")




def resume_command(invocation: Invocation, checkpoints_dir: Path | None = None) -> str:
    """The command that continues `invocation`'s study (`checkpoints_dir`: an export folder given with --resume)."""
    words = ["python", "-m", "study.run", invocation.settings.dataset, "--name", invocation.name, "--storage", invocation.storage]
    if checkpoints_dir is not None:  # otherwise --resume exports where the study.json says
        words += ["--checkpoints-dir", str(checkpoints_dir.resolve())]
    return shlex.join([*words, "--resume"])


def interrupted(invocation: Invocation | None, checkpoints_dir: Path | None = None) -> int:
    """Say how an interrupted study continues (or that none had started); returns the exit status."""
    if invocation is not None and exists(f"{invocation.experiment_path}/{STUDY_FILE}"):
        print(f"The study was interrupted; its state is saved. Continue it with:\n  {resume_command(invocation, checkpoints_dir)}", flush=True)
    else:
        print("Interrupted before the study started: nothing was saved, so run the same command again.", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    use_token_to_join(args.address)
    invocation = None
    try:
        with signal_handlers({signal.SIGTERM: interrupt}):
            invocation = interpret(args)
            typed = typed_flags(parser, argv, args) if args.resume else frozenset()
            summary = run_study(invocation, args.resume, args.address, args.dashboard_host, args.checkpoints_dir, typed)
    except UserError as error:
        return print_error(error)
    except KeyboardInterrupt:
        return interrupted(invocation, args.checkpoints_dir if args.resume else None)
    return 0 if summary is not None else interrupted(invocation, args.checkpoints_dir if args.resume else None)


if __name__ == "__main__":
    sys.exit(main())
