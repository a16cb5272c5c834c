"""The Ray boundary: the function trainable Ray Tune calls once per trial, and its resumption.

The work itself is study.loop's (usable without Ray); `train_trial` adds Ray's side: config dict
-> Hyperparams, one report per epoch (ASHA's time unit) with a checkpoint, and resumption from
the last checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path, PurePosixPath

import torch

from study.checkpoint import TRIAL_CHECKPOINT_FILE, read_checkpoint, save_checkpoint
from study.config import ARCH_KEY, ENERGY_METRIC, REPEAT_KEY, SEED_KEY, Hyperparams, StudySettings
from study.energy import energy_inputs, estimated_energy
from study.files import write_atomically
from study.final_test import BestSoFar, best_epoch_on_test_split
from study.loop import (
    DIVERGED,
    OPTIMIZERS,
    calibrate_on_first_batch,
    epoch_metrics,
    input_adapter,
    make_loader,
    measure,
    pick_device,
    train_one_epoch,
    trial_datasets,
)
from study.precision import resolve
from study.registry import DATASETS, build_model
from study.summary import SELF_STOPPING_METRICS, TrialStatus

PREDICTIONS_FILE = "test_predictions.json"  # in a repeat's last checkpoint: {"predicted": [...], "labels": [...]}


def resume_state(checkpoint) -> dict | None:
    """The checkpoint a restored trial continues from: the one Ray names, else the newest older one left.

    Ray deletes a trial's worst checkpoints as better ones arrive, but saves the experiment state only
    every few seconds. A study killed in between is restored with a checkpoint that no longer exists;
    the trial then repeats the epochs since an older checkpoint (or since the start) instead of failing.
    Trials report their own `epoch`, which the scheduler and the summary count, so the repeat is harmless.
    """
    if checkpoint is None:
        return None
    from pyarrow import fs
    from ray import tune

    files = checkpoint.filesystem
    named = PurePosixPath(checkpoint.path)
    if files.get_file_info(str(named / TRIAL_CHECKPOINT_FILE)).type == fs.FileType.File:
        return _read_trial_checkpoint(checkpoint)
    # Ray names checkpoint folders checkpoint_000000, checkpoint_000001, ...: by name is by age.
    siblings = files.get_file_info(fs.FileSelector(str(named.parent), allow_not_found=True))
    older = sorted(
        info.path for info in siblings
        if info.type == fs.FileType.Directory and info.base_name.startswith("checkpoint_") and info.base_name < named.name
    )
    gone = f"{named.name} of this trial was deleted after the study last saved its state"
    for folder in reversed(older):
        if files.get_file_info(f"{folder}/{TRIAL_CHECKPOINT_FILE}").type == fs.FileType.File:
            print(f"{gone}; continuing from {PurePosixPath(folder).name}.", flush=True)
            return _read_trial_checkpoint(tune.Checkpoint(folder, filesystem=files))
    print(f"{gone}; starting the trial again.", flush=True)
    return None


def _read_trial_checkpoint(checkpoint) -> dict:
    with checkpoint.as_directory() as folder:
        return read_checkpoint(Path(folder) / TRIAL_CHECKPOINT_FILE)


def _report(metrics: dict, model, optimizer, settings: StudySettings, hp: Hyperparams, best: BestSoFar | None, predictions: dict | None) -> None:
    """One epoch's report to Ray Tune, with the checkpoint it scores (for a repeat: its best state and, at
    the end, its test predictions)."""
    from ray import tune

    extra = {"best_val_acc": best.val_acc, "best_epoch": best.epoch, "best_model": best.state} if best is not None else {}
    with tempfile.TemporaryDirectory() as folder:
        save_checkpoint(
            Path(folder) / TRIAL_CHECKPOINT_FILE,
            model,
            dataset=settings.dataset,
            arch=settings.arch,
            hp=hp,
            optimizer=optimizer.state_dict(),
            epoch=metrics["epoch"],
            metrics=metrics,
            synthetic=settings.synthetic,
            **extra,
        )
        if predictions is not None:
            write_atomically(Path(folder) / PREDICTIONS_FILE, json.dumps(predictions) + "\n")
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def trial_settings(config: dict, settings: StudySettings) -> tuple[StudySettings, Hyperparams, int | None]:
    """A trial's settings (its architecture and seed, where the config names them), hyperparameters, and repeat number."""
    config = dict(config)
    arch, seed, repeat = config.pop(ARCH_KEY, settings.arch), config.pop(SEED_KEY, settings.seed), config.pop(REPEAT_KEY, None)
    return dataclasses.replace(settings, arch=arch, seed=seed), Hyperparams.from_dict(config), repeat


def given_gpu() -> bool:
    """Whether Ray gave this trial a GPU: Ray 2.60 no longer hides GPUs from trials that asked for none.

    Outside a Ray worker (a test calling train_trial) there is no share to ask for; asking would start a
    Ray runtime as a side effect.
    """
    import ray

    return bool(ray.get_gpu_ids()) if ray.is_initialized() else False


def train_trial(config: dict, settings: StudySettings) -> None:
    """Ray Tune function trainable: trains up to `settings.max_epochs`, reporting once per epoch.

    A search trial stops itself when it cannot learn (study.loop.epoch_metrics). A repeat (its config has
    a "repeat") trains every epoch, and at the last tests its best-validation epoch's model on the test split.
    """
    from ray import tune  # imported here so that importing this module needs no Ray runtime

    settings, hp, repeat = trial_settings(config, settings)
    source = DATASETS[settings.dataset].source
    torch.set_num_threads(settings.torch_threads)
    torch.manual_seed(settings.seed)
    device = pick_device(given_gpu())
    precision = resolve(settings.precision, device)

    train_set, val_set = trial_datasets(settings, hp)
    workers = settings.loader_workers
    train_loader = make_loader(train_set, hp.batch_size, shuffle=True, workers=workers)  # reseeded every epoch below
    val_loader = make_loader(val_set, hp.batch_size, shuffle=False, workers=workers)
    adapt = input_adapter(settings.dataset, settings.arch, hp)
    # An energy-aware search's trials estimate their energy each epoch; repeats are chosen and tested on accuracy alone.
    searches_energy = ENERGY_METRIC in settings.metrics and repeat is None
    counted = energy_inputs(val_set, adapt, device, settings.seed) if searches_energy else None

    model = build_model(settings.dataset, settings.arch, hp).to(device)
    optimizer = OPTIMIZERS[hp.optimizer](model.parameters(), hp)
    best = BestSoFar() if repeat is not None else None
    first_epoch = 1
    if (state := resume_state(tune.get_checkpoint())) is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        first_epoch = state["epoch"] + 1
        if best is not None:
            best = BestSoFar(state["best_val_acc"], state["best_epoch"], state["best_model"])
    elif settings.calibrate and model.spiking:
        calibrate_on_first_batch(model, train_loader, adapt, device, settings.seed, events=source.kind == "events")

    for epoch in range(first_epoch, settings.max_epochs + 1):
        started = time.perf_counter()
        train_loader.generator.manual_seed(settings.seed + epoch)  # the same order whether resumed or not
        train = train_one_epoch(model, train_loader, optimizer, adapt, device, precision)
        # A diverged network has nothing left to learn or to validate: report it and stop the trial.
        val = measure(model, val_loader, adapt, device, precision) if not train.diverged else DIVERGED
        checks = {"classes": source.num_classes, "epochs_left": settings.max_epochs - epoch} if repeat is None else {}
        metrics = epoch_metrics(epoch, train, val, time.perf_counter() - started, **checks)
        if counted is not None and not train.diverged:
            metrics[ENERGY_METRIC] = estimated_energy(model, counted)
        predictions = None
        if best is not None:
            best.update(metrics, model)
            if epoch == settings.max_epochs or metrics.get(TrialStatus.DIVERGED.value):
                tested, predictions = best_epoch_on_test_split(best, settings, hp, device)
                metrics |= tested
        _report(metrics, model, optimizer, settings, hp, best, predictions)
        if any(metrics.get(problem) for problem in SELF_STOPPING_METRICS):
            return  # nothing left to learn: diverged, silent or saturated for a whole epoch, or still at chance
