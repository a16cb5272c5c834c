"""The report's table of exported best models: where each one's NIR or ONNX file is, the command that writes it,
or why the export refuses the model (in the export's own words)."""

from __future__ import annotations

from pathlib import Path

from analysis.comparison import SECTION
from analysis.content import Table
from analysis.writeup import link
from study.errors import UserError
from study.export import exported_files
from study.export.exporter import exportable

FORMATS = {".nir": "NIR (neuromorphic hardware and simulators)", ".onnx": "ONNX"}
REFUSED = "cannot be exported"


def export_refusal(checkpoint: Path) -> str | None:
    """Why `python -m study.export CHECKPOINT` would refuse the checkpoint (exit 2), in its own message, or None.

    The export's own checks of the checkpoint (study.export.exporter.exportable). Whether the output folder can be
    written is not asked here: that is the caller's machine.
    """
    try:
        exportable(checkpoint)
    except UserError as error:
        return str(error)
    return None


def export_table(models: list[tuple[str, Path]], folder: Path) -> Table:
    """One row per (title, best checkpoint): the exported files, as paths relative to the report's `folder`; for a
    model not exported, the command that exports it, or why the export refuses it."""
    rows = []
    for title, checkpoint in models:
        files = exported_files(checkpoint)
        if files:
            rows += [[title, FORMATS[path.suffix], link(path, folder)] for path in files]
        elif (refusal := export_refusal(checkpoint)) is not None:
            rows.append([title, REFUSED, refusal])
        else:
            rows.append([title, "not exported", f"python -m study.export {checkpoint}"])
    return Table(
        "The best models in their ecosystems' formats (spiking CNNs as NIR, the CNN as ONNX); files are relative to "
        "this report. Networks NIR cannot express (max pooling, the spiking LSTM) are refused by the export; their row "
        "gives its reason and the option that avoids it.",
        SECTION,
        ["model", "format", "file"],
        rows,
    )
