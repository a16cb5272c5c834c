"""Where a checkpoint came from: the settings of the study that wrote it, when its experiment is on this disk.

An exported `checkpoints/<name>/<arch>/best.pth` finds its experiment through `config.json`'s
`trial_checkpoint`; a trial's own `<experiment>/trial_x/checkpoint_y/checkpoint.pth` lies inside it.
Testing or drawing a checkpoint again then uses the study's data folder and test subset, so it
reproduces what the study measured.
"""

from __future__ import annotations

import json
from pathlib import Path

from study.config import STUDY_FILE
from study.invocation import RecordedSettings


def _study_record_near(folder: Path, levels: int = 3) -> RecordedSettings | None:
    """The settings of the study.json in `folder` or up to `levels` folders above it, if any can be read."""
    for candidate in [folder, *folder.parents][: levels + 1]:
        try:
            record = json.loads((candidate / STUDY_FILE).read_text())
        except (OSError, ValueError):
            continue
        if (settings := RecordedSettings.of(record)) is not None:
            return settings
    return None


def study_settings_of(checkpoint: Path) -> RecordedSettings | None:
    """study.json's settings of the experiment `checkpoint` came from, None when it cannot be found."""
    checkpoint = Path(checkpoint).resolve()
    places = [checkpoint.parent]
    try:
        trial_checkpoint = json.loads((checkpoint.parent / "config.json").read_text()).get("trial_checkpoint")
    except (OSError, ValueError, AttributeError):
        trial_checkpoint = None
    if isinstance(trial_checkpoint, str) and "://" not in trial_checkpoint:  # remote storage: nothing to read here
        places.insert(0, Path(trial_checkpoint))
    for place in places:
        settings = _study_record_near(place)
        if settings is not None:
            return settings
    return None


def experiment_data_dir(checkpoint: Path) -> Path | None:
    """The data folder of the study `checkpoint` came from, None when unknown or no longer there."""
    settings = study_settings_of(checkpoint)
    if settings is not None and settings.data_dir is not None and settings.data_dir.is_dir():
        return settings.data_dir
    return None  # a moved or deleted data folder: fall back to the default


# Where a checkpoint is read against when neither the user nor its experiment names a data folder.
DEFAULT_DATA_DIR = Path("data")


def checkpoint_data_dir(checkpoint: Path, given: Path | None = None) -> Path:
    """The data folder to test or draw `checkpoint` on: `given`, else its study's, else ./data."""
    return given or experiment_data_dir(checkpoint) or DEFAULT_DATA_DIR


def experiment_test_limit(checkpoint: Path) -> int | None:
    """The --test-limit of the study `checkpoint` came from (None: the whole split, or unknown)."""
    settings = study_settings_of(checkpoint)
    return settings.test_limit if settings is not None else None
