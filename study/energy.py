"""Energy per inference estimated from operation counts: counts x energy per operation.

The default table is the one SNN papers use: Horowitz, "Computing's energy problem (and what we can
do about it)", ISSCC 2014, 45 nm. A 32-bit float multiply costs 3.7 pJ and an add 0.9 pJ, so a
multiply-accumulate (MAC) 4.6 pJ and an accumulate (AC, what a spike into a synapse costs) 0.9 pJ;
8-bit integers: multiply 0.2 pJ, add 0.03 pJ. A membrane update (decay times membrane, plus the
input) is charged one multiply-accumulate; the threshold comparison and the reset are not counted.

What the estimate leaves out: memory access and data movement (a 32-bit read from an 8 kB cache
alone costs about 5 pJ, more than a MAC; from DRAM hundreds of times more), which can dominate on
real hardware; a spiking network's advantage on this estimate is an upper bound, not a measurement.
"""

from __future__ import annotations

import json
import math
import stat
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from study.errors import UserError
from study.loop import seeded
from study.operations import OperationCount, count_operations


@dataclass(frozen=True)
class EnergyTable:
    """Energy per operation in picojoules, and where the figures come from."""

    name: str
    source: str
    mac_pj: float  # one multiply-accumulate
    ac_pj: float  # one accumulate
    membrane_update_pj: float  # one neuron's membrane update at one time step

    def energy_pj(self, count: OperationCount) -> float:
        """Estimated energy of one inference, picojoules: effective MACs, effective ACs and membrane updates."""
        return count.effective_macs * self.mac_pj + count.effective_acs * self.ac_pj + count.membrane_updates * self.membrane_update_pj


HOROWITZ_FLOAT32 = EnergyTable(
    name="32-bit float, 45 nm",
    source="Horowitz, ISSCC 2014 (45 nm): float multiply 3.7 pJ + add 0.9 pJ = 4.6 pJ a MAC, 0.9 pJ an AC",
    mac_pj=4.6,
    ac_pj=0.9,
    membrane_update_pj=4.6,
)
HOROWITZ_INT8 = EnergyTable(
    name="8-bit integer, 45 nm",
    source="Horowitz, ISSCC 2014 (45 nm): integer multiply 0.2 pJ + add 0.03 pJ = 0.23 pJ a MAC, 0.03 pJ an AC",
    mac_pj=0.23,
    ac_pj=0.03,
    membrane_update_pj=0.23,
)
# Validation samples whose operations estimate a trial's energy per inference, each epoch, for --objective
# accuracy,energy (study.trainable): the same samples every epoch, so the estimate follows the weights only.
ENERGY_SAMPLES = 16


def energy_inputs(val_set, adapt, device, seed: int) -> torch.Tensor:
    """ENERGY_SAMPLES validation samples spread evenly over the split (which may be ordered by class), as model
    input (a rate encoding drawn once, with `seed`)."""
    spacing = max(1, len(val_set) // ENERGY_SAMPLES)
    inputs, _ = val_set[list(range(0, len(val_set), spacing))[:ENERGY_SAMPLES]]
    with seeded(seed, device):  # the rate encoding draws on the device: the training's stream stays as it was
        return adapt(inputs.to(device))


def estimated_energy(model, inputs: torch.Tensor) -> float:
    """Energy per inference in pJ, 32-bit float arithmetic (the default table, HOROWITZ_FLOAT32)."""
    return HOROWITZ_FLOAT32.energy_pj(count_operations(model.eval(), inputs))


# What a table file must give: energy per operation kind, in picojoules.
OPERATION_KINDS = ("mac_pj", "ac_pj", "membrane_update_pj")
OMITTED = (
    "Memory access and data movement are not included: on real hardware they can cost more than the arithmetic "
    "(a 32-bit read from an 8 kB cache about 5 pJ, more than a MAC, and from DRAM hundreds of times more), so this "
    "estimate compares arithmetic only. The snnTorch maintainers and hardware-aware studies (Dampfhoffer et al., "
    "IEEE TETCI 2023; Lemaire et al., ICONIP 2022) warn that a spiking network's advantage in operations can vanish "
    "once memory traffic is counted."
)


MAX_TABLE_BYTES = 1_000_000  # an energy table is a few lines of JSON


def load_energy_table(path: Path) -> EnergyTable:
    """An energy table from a JSON object with `mac_pj`, `ac_pj` and `membrane_update_pj` (picojoules), and
    optionally `name` and `source`. A path that is not a regular file (/dev/zero, a pipe), or a file over
    MAX_TABLE_BYTES, is refused before it is read: reading either could take all memory or never end."""
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):
            raise UserError(f"Energy table {path}: not a regular file (a folder, a device or a pipe); give a JSON file.")
        if status.st_size > MAX_TABLE_BYTES:
            raise UserError(
                f"Energy table {path}: {status.st_size:,} bytes, more than an energy table's few lines (at most "
                f"{MAX_TABLE_BYTES:,}); give the JSON file with mac_pj, ac_pj and membrane_update_pj."
            )
        record = json.loads(path.read_text())
    except OSError as error:
        raise UserError(f"Energy table {path}: cannot be read ({error.strerror or error}).") from None
    except ValueError as error:
        raise UserError(f"Energy table {path}: not JSON ({error}).") from None
    if not isinstance(record, dict):
        raise UserError(f"Energy table {path}: expected a JSON object with {', '.join(OPERATION_KINDS)} (picojoules).")
    missing = [kind for kind in OPERATION_KINDS if kind not in record]
    if missing:
        raise UserError(f"Energy table {path}: lacks {', '.join(missing)} (energy per operation in picojoules; it needs {', '.join(OPERATION_KINDS)}).")
    unknown = sorted(set(record) - {field.name for field in fields(EnergyTable)})
    if unknown:
        raise UserError(f"Energy table {path}: unknown keys {', '.join(unknown)} (known: name, source, {', '.join(OPERATION_KINDS)}).")
    return EnergyTable(
        name=str(record.get("name", path.stem)),
        source=str(record.get("source", f"{path}")),
        **{kind: _picojoules(path, kind, record[kind]) for kind in OPERATION_KINDS},
    )


def _picojoules(path: Path, kind: str, value) -> float:
    """A table entry as a float: a finite number, 0 or more."""
    try:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an integer too large for a float
        number = math.inf
    if not math.isfinite(number) or number < 0:
        shown = f"{value!r}"[:40]
        raise UserError(f"Energy table {path}: {kind} = {shown}; give a number of picojoules, 0 or more.")
    return number
