"""The snnTorch-tutorial-style reference that `python -m study.bench` and `study.gpu_check` time ours against.

It follows snnTorch tutorial 7: `tonic.transforms.ToFrame` per sample in the data loader, and the
whole network (`snn.Leaky(init_hidden=True)` layers) called once per time step, with our layers'
weights. The operation-count tests use the same network as neurobench's snnTorch twin.
"""

from __future__ import annotations

import copy

import numpy as np
import snntorch as snn
import torch
import torch.nn.functional as F
from snntorch import utils
from torch import nn
from torch.utils.data import DataLoader, Dataset

from study.config import Hyperparams
from study.data.frames import FrameSpec, frame_transform
from study.data.sources import NMNIST_SOURCE, RawSplit
from study.models.common import Output, class_scores
from study.models.lif_scan import SURROGATES


def time_major(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    return batch.to(device).transpose(0, 1)  # [B, T, P, H, W] -> [T, B, P, H, W]


class ReferenceSCNN(nn.Module):
    """Tutorial 7's network: our layers and weights (plain NCHW, fp32), `snn.Leaky(init_hidden=True)` between them."""

    spiking = True

    def __init__(self, ours: nn.Module, hp: Hyperparams):
        super().__init__()
        if hp.batch_norm or hp.readout != "spikes":
            raise ValueError("the tutorial-style reference has no BatchNorm over time and reads out spike counts")

        def neuron(**extra) -> snn.Leaky:
            surrogate = SURROGATES[hp.surrogate](slope=hp.slope)  # snnTorch's own function, as in the tutorial
            return snn.Leaky(beta=hp.beta, threshold=hp.threshold, spike_grad=surrogate, init_hidden=True, reset_mechanism=hp.reset, **extra)

        layers = [layer for block in ours.blocks for layer in (copy.deepcopy(block.conv), copy.deepcopy(block.pool), neuron())]
        layers += [copy.deepcopy(ours.classifier), neuron(output=True)]
        self.net = nn.Sequential(*layers).to(memory_format=torch.contiguous_format)
        self.input_scale = float(ours.input_scale)
        self.num_classes = ours.output_layer.num_classes

    def run(self, frames: torch.Tensor) -> Output:
        """The tutorial's forward pass: reset, then the whole network once per step of `[T, B, ...]`."""
        utils.reset(self.net)
        spikes = []
        for step in frames * self.input_scale:
            spk_out, _ = self.net(step)
            spikes.append(spk_out)
        return Output(class_scores(torch.stack(spikes), self.num_classes))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.run(frames).scores


class ReferenceFrames(torch.utils.data.Dataset):
    """Tutorial style: each sample's events are read and turned into frames by tonic every time."""

    def __init__(self, split: RawSplit, indices: np.ndarray, spec: FrameSpec):
        self.split, self.indices, self.transform = split, indices, frame_transform(NMNIST_SOURCE, spec)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        events, label = self.split.dataset[int(self.indices[i])]
        return torch.from_numpy(self.transform(events).astype(np.float32)), label


def reference_loader(dataset: Dataset, batch_size: int, shuffle: bool) -> DataLoader:
    """The tutorial's loader: samples fetched and stacked one by one."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)


def reference_epoch(model: nn.Module, train_set: Dataset, val_set: Dataset, batch_size: int, device: torch.device) -> None:
    """One tutorial-style epoch: Adam over the training set, then a pass over the validation set."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for inputs, targets in reference_loader(train_set, batch_size, True):
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model.run(time_major(inputs, device)).scores, targets.to(device)).backward()
        optimizer.step()
    with torch.no_grad():
        for inputs, _ in reference_loader(val_set, batch_size, False):
            model.run(time_major(inputs, device))
