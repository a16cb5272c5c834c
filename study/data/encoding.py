"""From a batch as the data loader delivers it to the tensor a model takes.

Spiking models take time-major input `[T, B, C, H, W]`; the conventional CNN takes `[B, C, H, W]`.
"""

from __future__ import annotations

import torch
from snntorch import spikegen


def direct_current(images: torch.Tensor, num_steps: int) -> torch.Tensor:
    """The same image as input current at every step: [B, C, H, W] -> [T, B, C, H, W]."""
    return images.unsqueeze(0).expand(num_steps, *images.shape)


def rate_coded(images: torch.Tensor, num_steps: int) -> torch.Tensor:
    """Bernoulli spikes with the pixel intensity as probability: [B, C, H, W] -> [T, B, C, H, W]."""
    return spikegen.rate(images.clamp(0, 1), num_steps=num_steps)


ENCODERS = {"direct": direct_current, "rate": rate_coded}


def to_model_input(batch: torch.Tensor, kind: str, spiking: bool, num_steps: int, encoding: str) -> torch.Tensor:
    """Adapt a loader batch: static images `[B, C, H, W]` (bytes), or event frames `[B, T, P, H, W]` (counts)."""
    if kind == "static":
        images = batch.float() / 255.0  # on the device: the loader moves bytes
        return ENCODERS[encoding](images, num_steps) if spiking else images
    if spiking:
        return batch.transpose(0, 1)  # [B, T, P, H, W] -> [T, B, P, H, W]
    # The CNN sees its time bins at once, stacked as channels (one bin: every event summed); log1p keeps
    # dense regions from dominating.
    return batch.log1p().flatten(1, 2)  # [B, T, P, H, W] -> [B, T*P, H, W]


def what_it_sees(kind: str, spiking: bool, hp) -> str:
    """What a network's input is, in words, for the writeup (the comparison rests on it)."""
    if kind == "static":
        if not spiking:
            return "each image once"
        coding = "as the same input current at every step" if hp.encoding == "direct" else "rate-coded as random spikes"
        return f"each image {coding} over {hp.num_steps} time steps"
    if spiking:
        return f"the events binned into {hp.num_steps} frames, one per time step, in order"
    if hp.time_bins == 1:
        return "all events of a sample summed into one frame (no time order)"
    return f"the events binned into {hp.time_bins} frames stacked as input channels (time order as channel order)"
