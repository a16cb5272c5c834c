"""Output paths checked before the long work starts, so that results are never lost to a path that cannot be written.

Each check creates nothing that stays: it finds the nearest folder that exists, checks that every part of
the path that exists is a folder, and writes (then removes) a temporary file there. Permission bits alone
say nothing for root, and pseudo file systems (/proc) refuse writes whatever their bits say.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from study.errors import UserError


def check_writable_folder(folder: Path, flag: str) -> None:
    """A UserError unless `folder` is a folder this process can write in, or can be created as one."""
    folder = Path(folder).expanduser().absolute()
    existing = folder
    while not _exists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == folder else f"lies inside {existing}, which is a file"
        raise UserError(f"{flag} {folder} {where}; it must be a folder (it is created if absent). Nothing was written.")
    limit = os.pathconf(existing, "PC_NAME_MAX")
    too_long = [part for part in folder.relative_to(existing).parts if len(os.fsencode(part)) > limit]
    if too_long:
        raise UserError(f"{flag} {folder}: the name {too_long[0][:40]!r}... is longer than the {limit} bytes a file name may have here.")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".snn-study-write-probe-"):
            pass
    except OSError as error:
        raise UserError(f"{flag} {folder} cannot be written: {existing} refuses new files ({error.strerror or error}). Nothing was written.") from None


def _exists(path: Path) -> bool:
    """Whether `path` exists; a name too long to look up does not (Path.exists raises for it)."""
    try:
        path.stat()
    except OSError:
        return False
    return True


def check_writable_file(path: Path, flag: str) -> None:
    """A UserError unless `path` can be written as a file (its folder writable, itself not a folder)."""
    path = Path(path).expanduser().absolute()
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder; give the path of a file to write.")
    check_writable_folder(path.parent, flag)
