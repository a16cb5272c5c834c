"""snnTorch neurons as this project uses them: explicit state, reset per batch, no global registry.

snnTorch 1.0.0 pitfalls designed around here:
- every neuron is appended to the class-level `SpikingNeuron.instances` list, which never
  shrinks; `snntorch.utils.reset` walks it and resets *every* live network. We never use
  `init_hidden`, keep state in local variables, and take our neurons off that list, so a
  worker running many trials does not keep every old model alive.
- a neuron called with `mem=None` reuses the state left on the module by the previous batch
  when the shapes match. We always pass fresh zero state at step 0.
"""

from __future__ import annotations

import snntorch as snn
import torch
from snntorch._neurons.neurons import SpikingNeuron

from study.config import Hyperparams
from study.errors import lookup
from study.models.lif_scan import RESETS, Surrogate, leaky_scan


# The Hyperparams fields leaky and spike_grad read.
NEURON = frozenset({"beta", "threshold", "surrogate", "slope", "learn_beta", "learn_threshold", "reset"})


def untracked(neuron: SpikingNeuron) -> SpikingNeuron:
    """Take `neuron` off snnTorch's global instance list (see the module docstring)."""
    SpikingNeuron.instances[:] = [other for other in SpikingNeuron.instances if other is not neuron]
    return neuron


def spike_grad(hp: Hyperparams) -> Surrogate:
    return Surrogate(hp.surrogate, hp.slope)


def leaky(hp: Hyperparams) -> snn.Leaky:
    """A layer of leaky integrate-and-fire neurons with the trial's beta, threshold, surrogate and reset."""
    lookup(RESETS, hp.reset, "reset")  # a UserError naming the choices, not snnTorch's ValueError
    return untracked(
        snn.Leaky(
            beta=hp.beta,
            threshold=hp.threshold,
            spike_grad=spike_grad(hp),
            learn_beta=hp.learn_beta,
            learn_threshold=hp.learn_threshold,
            reset_mechanism=hp.reset,
        )
    )


def leaky_over_time(neuron: snn.Leaky, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a neuron made by `leaky` over input current `[T, B, ...]` from zero state, as one fused scan
    (study.models.lif_scan); returns spikes and membrane `[T, B, ...]`. The scan computes what stepping
    `neuron` through time would (its reset, `Surrogate` gradients), bit for bit."""
    return leaky_scan(current, neuron.beta, neuron.threshold, neuron.spike_grad, neuron.reset_mechanism)
