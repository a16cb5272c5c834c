"""Pieces shared by the search spaces. Ranges are documented where they are chosen."""

from __future__ import annotations

import optuna


def optimizer(trial: optuna.Trial) -> None:
    """Adam or SGD with momentum; learning rate log-uniform over two decades."""
    choice = trial.suggest_categorical("optimizer", ["adam", "sgd"])
    trial.suggest_float("lr", 3e-4, 3e-2, log=True)
    if choice == "sgd":  # momentum only exists for SGD: a conditional parameter
        trial.suggest_float("momentum", 0.5, 0.99)
    trial.suggest_categorical("batch_size", [32, 64, 128])


def spiking_neurons(trial: optuna.Trial, min_steps: int, max_steps: int) -> None:
    """Leaky integrate-and-fire neurons and the spiking output layer.

    beta in [0.5, 0.99]: the seed compared 0.5 and 0.8; threshold in [0.5, 2]; T in steps of 5 so
    that trials share frame caches; population 1 (one neuron per class) or population coding.
    """
    trial.suggest_float("beta", 0.5, 0.99)
    trial.suggest_float("threshold", 0.5, 2.0)
    trial.suggest_int("num_steps", min_steps, max_steps, step=5)
    trial.suggest_categorical("population", [1, 5, 10])
    trial.suggest_float("slope", 5.0, 50.0, log=True)  # fast-sigmoid surrogate steepness
    trial.suggest_categorical("learn_beta", [False, True])
    trial.suggest_categorical("learn_threshold", [False, True])


def lstm(trial: optuna.Trial) -> None:
    """Spiking LSTM layers: hidden size, and a threshold for their membrane o * tanh(c), which stays below 1."""
    trial.suggest_categorical("hidden", [64, 128, 256])
    trial.suggest_float("lstm_threshold", 0.01, 0.2, log=True)
