"""The architectures: a conventional CNN, a spiking CNN and a spiking LSTM."""

from study.models.cnn import CNN
from study.models.common import Output
from study.models.scnn import SpikingCNN
from study.models.slstm import SpikingLSTM

__all__ = ["CNN", "Output", "SpikingCNN", "SpikingLSTM"]
