"""snn-study: hyperparameter studies comparing spiking and conventional networks."""

__version__ = "0.1.0"
