"""snn.Leaky's recurrence over all time steps as one autograd node: the fast path for every LIF layer.

snnTorch's `Leaky`, called once per step, records about ten small autograd operations a step and
replays them one by one backwards. The recurrence is simple enough to differentiate by hand:

    r_t = s_{t-1}                                   (reset: last step's spike, detached, as snnTorch does)
    m_t = clamp(beta, 0, 1) * m_{t-1} + x_t - r_t * threshold      (reset "subtract", snnTorch's default)
    m_t = clamp(beta, 0, 1) * (1 - r_t) * m_{t-1} + x_t             (reset "zero")
    s_t = H(m_t - threshold)                        (surrogate derivative backwards)

so the forward pass runs a tight loop outside autograd and the backward pass is one vectorized
surrogate evaluation plus the reverse recurrence dm_t = g_t + beta * dm_{t+1} (times 1 - s_t when
the reset is to zero, since a spike then cuts m_t off from m_{t+1}). Spikes are
bit-for-bit snnTorch's (same operations in the same order); gradients agree to float rounding
(tests/test_lif_scan.py checks both, with learnable beta and threshold and both surrogates;
tests/test_models.py on the whole spiking CNN).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from snntorch import surrogate


@dataclass(frozen=True)
class Surrogate:
    """A surrogate gradient by name and slope; callable like snnTorch's, with its derivative exposed."""

    name: str  # "fast_sigmoid" or "sigmoid"
    slope: float

    def __call__(self, shifted: torch.Tensor) -> torch.Tensor:
        """snnTorch's own surrogate (Heaviside forwards): what `snn.Leaky` calls on the stepwise path."""
        return SURROGATES[self.name](slope=self.slope)(shifted)

    def derivative(self, shifted: torch.Tensor) -> torch.Tensor:
        """d spike / d membrane at `membrane - threshold`, written as snnTorch's backward writes it."""
        if self.name == "fast_sigmoid":
            return 1.0 / (self.slope * shifted.abs() + 1.0) ** 2
        decay = torch.exp(-self.slope * shifted)
        return self.slope * decay / (decay + 1) ** 2


# snnTorch's surrogate functions by name; `slope` is each one's steepness (the same scale for both).
SURROGATES = {"fast_sigmoid": surrogate.fast_sigmoid, "sigmoid": surrogate.sigmoid}
# snnTorch's reset mechanisms this scan computes (its `reset_mechanism`), by name. NIR's LIF, and the
# hardware that reads it, resets to zero.
RESETS = {
    "subtract": "subtract the threshold one step after a spike (snnTorch's default)",
    "zero": "set the membrane to zero one step after a spike (NIR's LIF)",
}


class LeakyScan(torch.autograd.Function):
    """(current [T, ...], beta, threshold) -> (spikes [T, ...], membrane [T, ...]), from zero state."""

    @staticmethod
    def forward(ctx, current, beta, threshold, spike_fn: Surrogate, reset: str):
        to_zero = reset == "zero"
        decay = beta.detach().clamp(0, 1)
        level = float(threshold)
        # fp32 state in the input's memory layout (channels-last stays channels-last); bf16 current
        # under autocast is added step by step, never converted as a whole.
        membrane = torch.empty_like(current, dtype=torch.float32)
        fired = torch.empty_like(current, dtype=torch.bool)
        previous = torch.zeros_like(membrane[0])
        for step in range(current.shape[0]):
            mem = membrane[step]
            torch.mul(previous, decay, out=mem)
            if step and to_zero:
                mem.masked_fill_(fired[step - 1], 0.0)  # beta * (1 - reset) * m, exactly: a reset membrane adds nothing
            mem.add_(current[step])
            if step and not to_zero:
                mem.add_(fired[step - 1], alpha=-level)  # fired is 0/1, so this is exactly - reset * threshold
            torch.gt(mem, level, out=fired[step])
            previous = mem
        spikes = fired.to(torch.float32)  # one conversion for all steps
        ctx.save_for_backward(spikes, membrane, beta, threshold)
        ctx.spike_fn, ctx.to_zero = spike_fn, to_zero
        ctx.set_materialize_grads(False)
        return spikes, membrane

    @staticmethod
    def backward(ctx, grad_spikes, grad_membrane):
        spikes, membrane, beta, threshold = ctx.saved_tensors
        slope_term = None  # the gradient reaching m_t through the spike s_t
        if grad_spikes is not None:
            # Written in the membrane's layout: a gradient in another layout than the layer that
            # made the current would cost a copy in every backward of the convolutions and pooling.
            slope_term = torch.mul(grad_spikes, ctx.spike_fn.derivative(membrane - threshold.detach()), out=torch.empty_like(membrane))
        # threshold's gradient through the spike, taken before `grad` is overwritten in place
        through_fire = slope_term.sum() if slope_term is not None and ctx.needs_input_grad[2] else 0.0
        if grad_membrane is None:
            grad = slope_term  # a fresh tensor: safe to overwrite below
        elif slope_term is None:
            grad = torch.empty_like(membrane).copy_(grad_membrane)
        else:
            grad = slope_term.add_(grad_membrane)
        # Reverse recurrence, in place: grad[t] becomes dL/dm_t = g_t + beta * dL/dm_{t+1} (reset to zero:
        # beta * (1 - s_t) * dL/dm_{t+1}).
        decay = float(beta.detach().clamp(0, 1))
        kept = 1 - spikes[:-1] if ctx.to_zero else None  # one tensor for all steps, not one per step
        for step in range(grad.shape[0] - 2, -1, -1):
            if kept is not None:
                grad[step].addcmul_(grad[step + 1], kept[step], value=decay)
            else:
                grad[step].add_(grad[step + 1], alpha=decay)
        grad_beta = grad_threshold = None
        if ctx.needs_input_grad[1]:
            inside = 1.0 if 0 <= float(beta) <= 1 else 0.0  # clamp(0, 1) passes gradient only inside
            carried = membrane[:-1] if kept is None else membrane[:-1] * kept  # m_{t-1} as step t saw it
            grad_beta = (grad[1:] * carried).sum().mul(inside).reshape(beta.shape).to(beta.dtype)
        if ctx.needs_input_grad[2]:
            # the threshold is in the subtracted reset, not in a reset to zero (the reset itself is detached)
            through_reset = 0.0 if ctx.to_zero else (grad[1:] * spikes[:-1]).sum()
            grad_threshold = (-(through_fire + through_reset)).reshape(threshold.shape).to(threshold.dtype)
        return grad, grad_beta, grad_threshold, None, None


def leaky_scan(current: torch.Tensor, beta: torch.Tensor, threshold: torch.Tensor, spike_fn: Surrogate, reset: str = "subtract"):
    """Spikes and membrane `[T, B, ...]` of a leaky layer driven by `current` `[T, B, ...]`, from zero state;
    `reset` one of RESETS."""
    if reset not in RESETS:
        raise ValueError(f"reset {reset!r}: the scan computes {' or '.join(RESETS)}")
    return LeakyScan.apply(current, beta, threshold, spike_fn, reset)
