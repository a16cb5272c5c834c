"""The spiking LSTM: a spiking convolutional LSTM, a spiking LSTM and a leaky output layer."""

from __future__ import annotations

from collections.abc import Iterator

import snntorch as snn
import torch
import torch.nn.functional as F
from torch import nn

from study.config import Hyperparams
from study.models.base import ExplainedSpikes, SpikingModel
from study.models.calibration import HIDDEN_RATE, Calibration, fit_threshold
from study.models.common import Output, fold_time
from study.models.neurons import NEURON, leaky, spike_grad, untracked
from study.models.readout import OutputLayer

CONV_CHANNELS = 16
POOL = 4


class SpikingLSTM(SpikingModel):
    """SConv2dLSTM (16 channels, 3x3, 4x4 max pool) - linear - SLSTM - linear - output layer."""

    # SConv2dLSTM convolves one time step at a time; channels-last measured 4.5x slower there.
    channels_last = False
    hyperparams = NEURON | {"dropout", "population", "readout", "hidden", "lstm_threshold"}

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, hp: Hyperparams):
        super().__init__()
        channels, height, width = input_shape
        self.conv_lstm = untracked(
            snn.SConv2dLSTM(channels, CONV_CHANNELS, 3, max_pool=POOL, threshold=hp.lstm_threshold, spike_grad=spike_grad(hp))
        )
        # snnTorch 1.0.0's SLSTM zeroes its state at every step unless input_size == hidden_size
        # (it compares the state's shape with the input's), so a projection makes them equal.
        self.project = nn.Linear(CONV_CHANNELS * (height // POOL) * (width // POOL), hp.hidden)
        self.lstm = untracked(snn.SLSTM(hp.hidden, hp.hidden, threshold=hp.lstm_threshold, spike_grad=spike_grad(hp)))
        self.fc = nn.Sequential(nn.Dropout(hp.dropout), nn.Linear(hp.hidden, num_classes * hp.population))
        self.output_layer = OutputLayer(leaky(hp), hp.readout, num_classes)

    def steps(self, x: torch.Tensor) -> Iterator[tuple[torch.Tensor, ...]]:
        """Per time step of `[T, B, C, H, W]`: the convolutional LSTM's spikes and pooled membrane, the LSTM's spikes and membrane."""
        _, batch, _, height, width = x.shape
        # Fresh state for every batch; the convolutional LSTM keeps full-resolution state.
        syn1 = mem1 = x.new_zeros(batch, CONV_CHANNELS, height, width)
        syn2 = mem2 = x.new_zeros(batch, self.lstm.hidden_size)
        for step in x:  # [B, C, H, W]
            spk1, syn1, mem1 = self.conv_lstm(step, syn1, mem1)  # spikes [B, 16, H/4, W/4] of the pooled membrane
            spk2, syn2, mem2 = self.lstm(self.project(spk1.flatten(1)), syn2, mem2)  # [B, hidden]
            yield spk1, mem1, spk2, mem2

    def run(self, x: torch.Tensor) -> Output:
        """x: `[T, B, C, H, W]`; the recurrent layers step through time, the rest runs folded."""
        conv_spikes, conv_membrane, lstm_spikes, lstm_membrane = zip(*self.steps(self.scale_input(x)))
        spk_lstm = torch.stack(lstm_spikes)  # [T, B, hidden]
        hidden = dict(zip(self.spike_layers, (torch.stack(conv_spikes), spk_lstm)))
        output = self.output_layer(fold_time(self.fc, spk_lstm), hidden)  # current [T, B, classes x pop]
        if not torch.is_grad_enabled():  # for the operation counts; in training it would cost a copy of every state
            output.membranes = dict(zip(self.spike_layers, (torch.stack(conv_membrane), torch.stack(lstm_membrane))))
        return output

    def calibrate(self, x: torch.Tensor, calibration: Calibration) -> None:
        """The recurrent layers' thresholds, in order, from their membranes' quantiles (they never reset)."""
        pooled = torch.stack([F.max_pool2d(mem1, POOL) for _, mem1, _, _ in self.steps(x)])
        calibration.thresholds["conv_lstm"] = fit_threshold(pooled, HIDDEN_RATE)
        self.conv_lstm.threshold.fill_(calibration.thresholds["conv_lstm"])
        membrane = torch.stack([mem2 for *_, mem2 in self.steps(x)])  # [T, B, hidden], with the new conv spikes
        calibration.thresholds["lstm"] = fit_threshold(membrane, HIDDEN_RATE)
        self.lstm.threshold.fill_(calibration.thresholds["lstm"])
        spikes = (membrane > calibration.thresholds["lstm"]).float()  # what the LSTM now emits
        self.output_layer.calibrate(fold_time(self.fc, spikes), self.fc[-1], calibration)

    @property
    def spike_layers(self) -> tuple[str, ...]:
        return ("conv_lstm", "lstm")

    @property
    def explained_spikes(self) -> ExplainedSpikes:
        # Not the SConv2dLSTM's internal convolution: it also sees the recurrent state (see analysis.gradcam).
        return ExplainedSpikes(spikes=self.spike_layers[0], reader="project")
