"""Exporting a best model out of this tool: spiking CNNs as NIR graphs, the CNN as ONNX.

`python -m study.export CHECKPOINT [--out DIR]` (study/export/__main__.py) is the command;
`export_checkpoint` the library call behind it.
"""

from study.export.exporter import Exported, RoundTripError, export_checkpoint, exported_files, exported_path

__all__ = ["Exported", "RoundTripError", "export_checkpoint", "exported_files", "exported_path"]
