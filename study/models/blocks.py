"""Convolution blocks, shared by the CNN and the spiking CNN: conv - [BatchNorm] - pool, `blocks` of them.

Capacity is searched as depth (`blocks`, 2-4 on 28-34 pixel inputs) and width: block i has
`CHANNELS[i] * width` channels, so `blocks=2, width=1` is the seed project's 12 and 32 channels.
Convolutions are padded to keep the frame size ("same"), so that every depth fits: each block only
halves the frame with its 2x2 pooling.
"""

from __future__ import annotations

import torch
from torch import nn

from study.config import Hyperparams
from study.errors import UserError, lookup
from study.models.common import fold_time

# Channels of each block at width 1: the seed's 12 and 32, then doubling, at most 128.
CHANNELS = (12, 32, 64, 128, 128, 128)
POOLING = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
# The Hyperparams fields conv_blocks reads.
CAPACITY = frozenset({"blocks", "width", "kernel_size", "batch_norm", "pooling"})


def block_channels(hp: Hyperparams) -> list[int]:
    if not 1 <= hp.blocks <= len(CHANNELS):
        raise UserError(f"blocks={hp.blocks}: the networks have 1 to {len(CHANNELS)} convolution blocks.")
    return [max(1, round(channels * hp.width)) for channels in CHANNELS[: hp.blocks]]


class ConvBlock(nn.Module):
    """conv (kernel `kernel_size`, padded) - BatchNorm (when `batch_norm`) - 2x2 pooling."""

    def __init__(self, in_channels: int, out_channels: int, hp: Hyperparams):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, hp.kernel_size, padding=hp.kernel_size // 2)
        self.norm = nn.BatchNorm2d(out_channels) if hp.batch_norm else None
        self.pool = lookup(POOLING, hp.pooling, "pooling")(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> [B, C', H/2, W/2]."""
        x = self.conv(x)
        return self.pool(self.norm(x) if self.norm is not None else x)

    def over_time(self, x: torch.Tensor) -> torch.Tensor:
        """[T, B, C, H, W] -> [T, B, C', H/2, W/2], time folded into the batch. BatchNorm normalizes over
        all T*B samples at once (as tdBN does), so its statistics do not depend on how the CPU path chunks."""
        if self.norm is None:
            return fold_time(self, x)
        current = fold_time(self.conv, x)
        current = self.norm(current.flatten(0, 1)).unflatten(0, current.shape[:2])
        return fold_time(self.pool, current)

    @property
    def affine(self) -> nn.Module:
        """The last layer whose output scales with its weights (pooling keeps the scale): what calibration scales."""
        return self.norm if self.norm is not None else self.conv


def max_blocks(input_size: tuple[int, int]) -> int:
    """The most blocks a frame of `input_size` fits: each halves it, and at least 1x1 must be left."""
    return min(max(min(input_size), 1).bit_length() - 1, len(CHANNELS))


def conv_blocks(in_channels: int, input_size: tuple[int, int], hp: Hyperparams) -> nn.ModuleList:
    """The blocks of `hp`, after checking that the frame does not vanish under their pooling."""
    channels = block_channels(hp)
    fits = max_blocks(input_size)
    if len(channels) > fits:
        valid = f"valid: 1 to {fits}" if fits else "a frame of at least 2x2 is needed for one block"
        raise UserError(
            f"blocks={hp.blocks} do not fit a {input_size[0]}x{input_size[1]} input: each block halves the frame, "
            f"so at most {fits} fit ({valid})."
        )
    return nn.ModuleList(ConvBlock(c_in, c_out, hp) for c_in, c_out in zip([in_channels, *channels], channels))
