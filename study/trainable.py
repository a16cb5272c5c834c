"""The Ray boundary: the function trainable Ray Tune calls once per trial, and its resumption.

The work itself is study.loop's (usable without Ray); `train_trial` adds Ray's side: config dict
-> Hyperparams, one report per epoch (ASHA's time unit) with a checkpoint, and resumption from
the last checkpoint.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path, PurePosixPath

import torch

from study.checkpoint import TRIAL_CHECKPOINT_FILE, read_checkpoint, save_checkpoint
from study.config import Hyperparams, StudySettings
from study.loop import (
    DIVERGED,
    OPTIMIZERS,
    epoch_metrics,
    input_adapter,
    make_loader,
    measure,
    pick_device,
    train_one_epoch,
    trial_datasets,
)
from study.models.calibration import calibrate
from study.precision import resolve
from study.registry import DATASETS, build_model
from study.summary import SELF_STOPPING_METRICS


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


def _report(metrics: dict, model, optimizer, settings: StudySettings, hp: Hyperparams) -> None:
    """One epoch's report to Ray Tune, with the checkpoint it scores."""
    from ray import tune

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
        )
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def train_trial(config: dict, settings: StudySettings) -> None:
    """Ray Tune function trainable: trains up to `settings.max_epochs`, reporting once per epoch."""
    from ray import tune  # imported here so that importing this module needs no Ray runtime

    hp = Hyperparams.from_dict(config)
    source = DATASETS[settings.dataset].source
    torch.set_num_threads(settings.torch_threads)
    torch.manual_seed(settings.seed)
    device = pick_device(in_trial=True)
    precision = resolve(settings.precision, device)

    train_set, val_set = trial_datasets(settings, hp)
    workers = settings.loader_workers
    train_loader = make_loader(train_set, hp.batch_size, shuffle=True, workers=workers)  # reseeded every epoch below
    val_loader = make_loader(val_set, hp.batch_size, shuffle=False, workers=workers)
    adapt = input_adapter(settings.dataset, settings.arch, hp)

    model = build_model(settings.dataset, settings.arch, hp).to(device)
    optimizer = OPTIMIZERS[hp.optimizer](model.parameters(), hp)
    first_epoch = 1
    if (state := resume_state(tune.get_checkpoint())) is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        first_epoch = state["epoch"] + 1
    elif settings.calibrate and model.spiking:
        train_loader.generator.manual_seed(settings.seed + 1)
        inputs, _ = next(iter(train_loader))  # epoch 1's first training batch
        calibration = calibrate(model, adapt(inputs.to(device)), events=source.kind == "events")
        print(f"Calibrated on the first training batch: {calibration.describe()}", flush=True)

    for epoch in range(first_epoch, settings.max_epochs + 1):
        started = time.perf_counter()
        train_loader.generator.manual_seed(settings.seed + epoch)  # the same order whether resumed or not
        train = train_one_epoch(model, train_loader, optimizer, adapt, device, precision)
        # A diverged network has nothing left to learn or to validate: report it and stop the trial.
        val = measure(model, val_loader, adapt, device, precision) if not train.diverged else DIVERGED
        metrics = epoch_metrics(
            epoch, train, val, time.perf_counter() - started, classes=source.num_classes, epochs_left=settings.max_epochs - epoch
        )
        _report(metrics, model, optimizer, settings, hp)
        if any(metrics.get(problem) for problem in SELF_STOPPING_METRICS):
            return  # nothing left to learn: diverged, silent or saturated for a whole epoch, or still at chance
