"""Writing files so that a reader never sees half of one, even when the writer is killed."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replaced_atomically(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block succeeds it becomes `path` in one rename.

    A failed block removes it; a killed process leaves only `<stem>.partial-<pid><suffix>`, never
    `path`. The suffix stays last because some writers (ffmpeg) choose the format by it.
    """
    path = Path(path)
    partial = path.with_name(f"{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_atomically(path: Path, data: str | bytes) -> Path:
    """Write the whole of `data` to `path` (folders created) through `replaced_atomically`; returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(path) as partial:
        if isinstance(data, bytes):
            partial.write_bytes(data)
        else:
            partial.write_text(data)
    return path
