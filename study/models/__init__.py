"""The architectures: a conventional CNN, a spiking CNN and a spiking LSTM, keeping one contract (study.models.base)."""

from study.models.base import ConventionalModel, ExplainedSpikes, Model, SpikingModel
from study.models.cnn import CNN
from study.models.common import OUTPUT_SPIKES, Output
from study.models.scnn import SpikingCNN
from study.models.slstm import SpikingLSTM

__all__ = ["CNN", "OUTPUT_SPIKES", "ConventionalModel", "ExplainedSpikes", "Model", "Output", "SpikingCNN", "SpikingLSTM", "SpikingModel"]
