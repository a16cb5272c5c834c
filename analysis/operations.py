"""One operation count per checkpoint, shared by the comparison table, the Pareto plot and the writeup.

A count (study.operations) runs the checkpoint's model on the first `samples` class-balanced test
samples; it is cached under `<cache>/operations/`, keyed by the checkpoint's bytes (so the exported
best.pth and the trial checkpoint it was copied from share one count), the sample count and the
data folder. Energy is computed from the counts when shown, so another energy table needs no recount.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from analysis.samples import Loaded, load_with_samples
from study.files import write_atomically
from study.origin import checkpoint_data_dir
from study.operations import LayerCount, OperationCount, count_operations

# Bumped whenever what a count means changes, so that older cached counts are not reused.
COUNT_VERSION = 2


def _digest(checkpoint: Path, samples: int, data_dir: Path) -> str:
    content = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    where = str(data_dir.resolve())
    return hashlib.sha256(f"{content}|{samples}|{where}|{COUNT_VERSION}".encode()).hexdigest()[:24]


def _read(path: Path) -> OperationCount | None:
    try:
        record = json.loads(path.read_text())
        return OperationCount(**{**record, "layers": tuple(LayerCount(**layer) for layer in record["layers"])})
    except (OSError, ValueError, TypeError, KeyError):  # absent or unreadable: count again
        return None


def checkpoint_operations(
    checkpoint: Path, samples: int, data_dir: Path | None, cache_dir: Path, loaded: Loaded | None = None
) -> OperationCount:
    """The checkpoint's operations per test sample; `loaded` (the same checkpoint and samples) saves a reload."""
    data_dir = checkpoint_data_dir(checkpoint, data_dir)  # where load_with_samples reads
    cache_file = cache_dir / "operations" / f"{_digest(checkpoint, samples, data_dir)}.json"
    cached = _read(cache_file)
    if cached is not None:
        return cached
    loaded = loaded or load_with_samples(checkpoint, samples, data_dir)
    count = count_operations(loaded.model, loaded.inputs)
    write_atomically(cache_file, json.dumps(asdict(count), indent=1))
    return count
