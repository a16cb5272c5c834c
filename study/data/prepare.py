"""Getting a study's data ready before any trial starts: generated, downloaded, decoded."""

from __future__ import annotations

from study.config import StudySettings
from study.data.datasets import data_root, is_synthetic
from study.data.events import event_store
from study.data.synthetic import ensure_synthetic
from study.errors import UserError
from study.registry import DATASETS
from study.writable import check_writable_folder


def prepare_data(settings: StudySettings, splits: tuple[bool, ...] = (True, False)) -> None:
    """Generate (--synthetic) or download the data, and decode event streams, before any trial starts:
    a missing or damaged data set fails here, once, and no trial waits on another to decode.

    `splits`: which to open (True: training, False: test). The synthetic generator is deterministic,
    so regenerated synthetic data is the data a synthetic model was trained on.
    """
    entry = DATASETS[settings.dataset]
    root = data_root(settings.data_dir, settings.synthetic)
    for folder in (settings.data_dir, root):
        if folder.exists() and not folder.is_dir():
            raise UserError(f"--data-dir: {folder} is a file; the data folder must be a folder (it is created if absent).")
    if not root.exists():  # it is created, so it must be creatable; an existing one may be read-only and prepared
        check_writable_folder(root, "--data-dir")
    if not settings.synthetic and is_synthetic(root):
        raise UserError(f"{root} holds synthetic data; use --synthetic with it, or point --data-dir at real data.")
    if settings.synthetic:
        ensure_synthetic(settings.dataset, root, entry.write_synthetic, *entry.synthetic_per_class)
    for train in splits:
        split = entry.source.open(root, train=train)
        if entry.source.kind == "events":
            event_store(entry.source, split, root / "cache")
