"""The report's table of exported best models: where each one's NIR or ONNX file is, or the command that writes it."""

from __future__ import annotations

from pathlib import Path

from analysis.comparison import SECTION
from analysis.content import Table
from analysis.writeup import link
from study.export import exported_files

FORMATS = {".nir": "NIR (neuromorphic hardware and simulators)", ".onnx": "ONNX"}


def export_table(models: list[tuple[str, Path]], folder: Path) -> Table:
    """One row per (title, best checkpoint): the exported files, as paths relative to the report's `folder`."""
    rows = []
    for title, checkpoint in models:
        files = exported_files(checkpoint)
        if files:
            rows += [[title, FORMATS[path.suffix], link(path, folder)] for path in files]
        else:
            rows.append([title, "not exported", f"python -m study.export {checkpoint}"])
    return Table(
        "The best models in their ecosystems' formats (spiking CNNs as NIR, the CNN as ONNX); files are relative to "
        "this report. Networks NIR cannot express (max pooling, the spiking LSTM) are refused by the export, naming "
        "the option that avoids them.",
        SECTION,
        ["model", "format", "file"],
        rows,
    )
