"""Pieces shared by the search spaces. Ranges are documented where they are chosen."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: importing a search space does not import Optuna
    import optuna


def optimizer(trial: optuna.Trial) -> None:
    """Adam or SGD with momentum; learning rate log-uniform over two decades."""
    choice = trial.suggest_categorical("optimizer", ["adam", "sgd"])
    trial.suggest_float("lr", 3e-4, 3e-2, log=True)
    if choice == "sgd":  # momentum only exists for SGD: a conditional parameter
        trial.suggest_float("momentum", 0.5, 0.99)
    trial.suggest_categorical("batch_size", [32, 64, 128])


def conventional(trial: optuna.Trial) -> None:
    """The conventional CNN: optimizer, learning rate, batch size and dropout before the classifier."""
    optimizer(trial)
    trial.suggest_float("dropout", 0.0, 0.5)


def spiking_neurons(trial: optuna.Trial, min_steps: int, max_steps: int) -> None:
    """Leaky integrate-and-fire neurons and the spiking output layer.

    beta in [0.5, 0.99]: the seed compared 0.5 and 0.8; threshold in [0.5, 2]; T in steps of 5 so
    that trials share frame caches; population 1 (one neuron per class) or population coding.
    """
    trial.suggest_float("beta", 0.5, 0.99)
    trial.suggest_float("threshold", 0.5, 2.0)
    trial.suggest_int("num_steps", min_steps, max_steps, step=5)
    trial.suggest_categorical("population", [1, 5, 10])
    trial.suggest_categorical("surrogate", ["fast_sigmoid", "sigmoid"])  # the spike's gradient stand-in
    trial.suggest_float("slope", 5.0, 50.0, log=True)  # its steepness
    trial.suggest_categorical("learn_beta", [False, True])
    trial.suggest_categorical("learn_threshold", [False, True])


def lstm(trial: optuna.Trial) -> None:
    """Spiking LSTM layers: hidden size, and a threshold for their membrane o * tanh(c), which stays below 1."""
    trial.suggest_categorical("hidden", [64, 128, 256])
    trial.suggest_float("lstm_threshold", 0.01, 0.2, log=True)


# First trials: settings known to learn (the seed project's, with a learning rate the spike-count
# loss tolerates), so that every study starts from a working configuration before TPE explores.
CNN_FIRST = {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "dropout": 0.0}
SPIKING_FIRST = {
    "optimizer": "adam",
    "lr": 5e-3,
    "batch_size": 64,
    "beta": 0.8,
    "threshold": 1.0,
    "num_steps": 25,
    "population": 1,
    "surrogate": "fast_sigmoid",
    "slope": 25.0,
    "learn_beta": False,
    "learn_threshold": False,
}
LSTM_FIRST = {**SPIKING_FIRST, "num_steps": 20, "hidden": 128, "lstm_threshold": 0.05}
