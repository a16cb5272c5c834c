"""The one checkpoint format, used by the trainable, the export and the analysis.

A checkpoint rebuilds its own model: layout version, dataset, architecture and hyperparameters
sit beside the weights. Files are loaded with `weights_only=True` (no pickled code runs) and
written atomically (temporary name, then rename).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from study.config import Hyperparams
from study.errors import UserError
from study.files import replaced_atomically
from study.ranges import check_hyperparams
from study.registry import build_model

# 2: configurable conv blocks (padded), output layer with a readout, an input-scale buffer.
CHECKPOINT_VERSION = 2
# The file a checkpoint is in inside each of a trial's `checkpoint_<n>/` folders.
TRIAL_CHECKPOINT_FILE = "checkpoint.pth"
REQUIRED_KEYS = {"version", "dataset", "arch", "hyperparams", "model"}
EXPORT_SUFFIXES = {True: ".nir", False: ".onnx"}  # spiking -> what study.export writes beside a checkpoint


def save_checkpoint(path: Path, model: nn.Module, *, dataset: str, arch: str, hp: Hyperparams, **extra) -> None:
    """Write model weights with what rebuilds them; `extra` holds e.g. optimizer state, epoch, metrics."""
    payload = {
        "version": CHECKPOINT_VERSION,
        "dataset": dataset,
        "arch": arch,
        "hyperparams": hp.to_dict(),
        "model": model.state_dict(),
        **extra,
    }
    with replaced_atomically(Path(path)) as partial:
        torch.save(payload, partial)


def read_checkpoint(path: Path) -> dict:
    """The checkpoint's contents, or a UserError saying why the file is not a usable checkpoint."""
    path = Path(path)
    if path.is_dir():
        inside = sorted(child.name for child in path.glob("*.pth"))
        hint = f"give a .pth file in it ({', '.join(inside[:3])})" if inside else "it holds no .pth file"
        raise UserError(f"{path} is a folder, not a checkpoint file: {hint}.")
    if not path.exists():
        raise UserError(f"No checkpoint file at {path}.")
    if not path.is_file():  # a device such as /dev/zero or a pipe: reading it would never end
        raise UserError(f"{path} is not a regular file (a device, a pipe or a socket), so not a checkpoint.")
    if path.suffix in EXPORT_SUFFIXES.values():
        raise UserError(f"{path} is a model exported as {path.suffix[1:].upper()}; give the best.pth beside it.")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty: not a snn-study checkpoint.")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses anyway
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UserError(f"{path} is not a snn-study checkpoint that can be loaded safely ({load_failure(error)}).") from None
    if not isinstance(payload, dict) or not REQUIRED_KEYS <= set(payload):
        raise UserError(f"{path} is not a snn-study checkpoint (expected keys {sorted(REQUIRED_KEYS)}).")
    version = payload["version"]
    if not isinstance(version, int) or isinstance(version, bool):  # "2" would read as "version 2; reads version 2"
        raise UserError(
            f"{path} is not a snn-study checkpoint: its layout version is {version!r}, not a whole number "
            f"(this snn-study reads version {CHECKPOINT_VERSION})."
        )
    if version != CHECKPOINT_VERSION:
        raise UserError(f"{path} has checkpoint layout version {version}; this snn-study reads version {CHECKPOINT_VERSION}.")
    weights = payload["model"]
    if not isinstance(weights, dict) or not all(isinstance(name, str) and isinstance(value, torch.Tensor) for name, value in weights.items()):
        raise UserError(
            f"{path} holds no model weights: its \"model\" entry is {_kind(weights)}, not a table of named tensors "
            f"(a state dict). The file was not written by snn-study, or was damaged."
        )
    return payload


def _kind(value) -> str:
    """What a checkpoint entry holds, in a few words (None, a list, a dict with a non-tensor value, ...)."""
    if value is None:
        return "None"
    if isinstance(value, dict):
        return "a dict holding something other than tensors"
    return f"a {type(value).__name__}"


def load_failure(error: Exception) -> str:
    """torch.load's reason in one clause: its weights-only message goes on to suggest `weights_only=False`
    and filing an issue with PyTorch, neither of which helps with a file that is not a checkpoint."""
    text = " ".join(str(error).split())
    _, found, reason = text.partition("WeightsUnpickler error:")
    if found:
        return "torch.load refused it: " + reason.split(" Check the documentation")[0].strip()
    return text or f"torch.load raised {type(error).__name__}"


def load_model(path: Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint describes and load its weights; returns (model in eval mode, checkpoint)."""
    payload = read_checkpoint(path)
    try:
        hp = Hyperparams.from_dict(payload["hyperparams"])
    except (TypeError, ValueError) as error:
        raise UserError(f"{path} holds hyperparameters this snn-study does not know ({error}).") from None
    check_hyperparams(hp, f"{path} holds a hyperparameter no model can be built with")
    model = build_model(payload["dataset"], payload["arch"], hp)
    expected, found = model.state_dict(), payload["model"]
    missing = [name for name in expected if name not in found]
    unexpected = [name for name in found if name not in expected]
    misshaped = [name for name in expected if name in found and tuple(found[name].shape) != tuple(expected[name].shape)]
    if missing or unexpected or misshaped:
        raise UserError(
            f"The weights in {path} do not fit a {payload['arch']} for {payload['dataset']}: {len(missing)} missing, "
            f"{len(unexpected)} unexpected and {len(misshaped)} mis-shaped tensors (first: "
            f"{(missing + unexpected + misshaped)[0]}). Was the file written for another architecture?"
        )
    model.load_state_dict(found)
    return model.to(device).eval(), payload
