"""The spiking LSTM: a spiking convolutional LSTM, a spiking LSTM and a leaky output layer."""

from __future__ import annotations

import snntorch as snn
import torch
from torch import nn

from study.config import Hyperparams
from study.models.base import ExplainedSpikes, SpikingModel
from study.models.common import OUTPUT_SPIKES, Output, class_scores, fold_time
from study.models.neurons import leaky, leaky_over_time, spike_grad, untracked

CONV_CHANNELS = 16
POOL = 4


class SpikingLSTM(SpikingModel):
    """SConv2dLSTM (16 channels, 3x3, 4x4 max pool) - linear - SLSTM - linear - LIF output."""

    # SConv2dLSTM convolves one time step at a time; channels-last measured 4.5x slower there.
    channels_last = False

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, hp: Hyperparams):
        super().__init__()
        channels, height, width = input_shape
        self.num_classes = num_classes
        self.conv_lstm = untracked(
            snn.SConv2dLSTM(channels, CONV_CHANNELS, 3, max_pool=POOL, threshold=hp.lstm_threshold, spike_grad=spike_grad(hp))
        )
        # snnTorch 1.0.0's SLSTM zeroes its state at every step unless input_size == hidden_size
        # (it compares the state's shape with the input's), so a projection makes them equal.
        self.project = nn.Linear(CONV_CHANNELS * (height // POOL) * (width // POOL), hp.hidden)
        self.lstm = untracked(snn.SLSTM(hp.hidden, hp.hidden, threshold=hp.lstm_threshold, spike_grad=spike_grad(hp)))
        self.fc = nn.Sequential(nn.Dropout(hp.dropout), nn.Linear(hp.hidden, num_classes * hp.population))
        self.lif_out = leaky(hp)

    def run(self, x: torch.Tensor) -> Output:
        """x: `[T, B, C, H, W]`; the recurrent layers step through time, the rest runs folded."""
        _, batch, _, height, width = x.shape
        # Fresh state for every batch; the convolutional LSTM keeps full-resolution state.
        syn1 = mem1 = x.new_zeros(batch, CONV_CHANNELS, height, width)
        syn2 = mem2 = x.new_zeros(batch, self.lstm.hidden_size)
        conv_spikes, lstm_spikes = [], []
        for step in x:  # [B, C, H, W]
            spk1, syn1, mem1 = self.conv_lstm(step, syn1, mem1)  # [B, 16, H/4, W/4]
            spk2, syn2, mem2 = self.lstm(self.project(spk1.flatten(1)), syn2, mem2)  # [B, hidden]
            conv_spikes.append(spk1)
            lstm_spikes.append(spk2)
        spk_lstm = torch.stack(lstm_spikes)  # [T, B, hidden]
        spk_out, mem_out = leaky_over_time(self.lif_out, fold_time(self.fc, spk_lstm))  # [T, B, classes x pop]
        spikes = {"conv_lstm": torch.stack(conv_spikes), "lstm": spk_lstm, OUTPUT_SPIKES: spk_out}
        return Output(class_scores(spk_out, self.num_classes), spikes, mem_out)

    @property
    def explained_spikes(self) -> ExplainedSpikes:
        # Not the SConv2dLSTM's internal convolution: it also sees the recurrent state (see analysis.gradcam).
        return ExplainedSpikes(spikes="conv_lstm", reader="project")

    @property
    def output_neurons(self) -> nn.Module:
        return self.lif_out
