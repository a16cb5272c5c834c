"""The registry and the search spaces: every name resolves, every space yields valid hyperparameters."""

from __future__ import annotations

import optuna
import pytest

from study.config import Hyperparams
from study.errors import UserError
from study.registry import ARCHITECTURES, DATASETS, SEARCH_SPACES, lookup

SPIKING_SEARCHED = {"beta", "threshold", "num_steps", "population", "lr", "batch_size"}


def test_every_dataset_and_architecture_has_a_search_space():
    assert set(SEARCH_SPACES) == {(d, a) for d in DATASETS for a in ARCHITECTURES}
    for entry in DATASETS.values():
        assert set(entry.compared) <= set(ARCHITECTURES) and {"cnn", "scnn"} <= set(entry.compared)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(UserError, match="Unknown dataset 'cifar'. Valid datasets: dvsgesture, mnist, nmnist."):
        lookup(DATASETS, "cifar", "dataset")


@pytest.mark.parametrize("dataset, arch", sorted(SEARCH_SPACES))
def test_search_space_suggests_valid_hyperparameters(dataset, arch):
    space = SEARCH_SPACES[(dataset, arch)].define
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    optimizers = set()
    for _ in range(30):
        trial = study.ask()
        constants = space(trial) or {}
        hp = Hyperparams.from_dict({**trial.params, **constants})  # raises on a name Hyperparams lacks
        optimizers.add(hp.optimizer)
        assert ("momentum" in trial.params) == (hp.optimizer == "sgd")  # conditional parameter
        if ARCHITECTURES[arch].spiking:
            assert SPIKING_SEARCHED <= set(trial.params)
            assert 0 < hp.beta < 1 and hp.threshold > 0 and hp.num_steps >= 5 and hp.population >= 1
        study.tell(trial, 0.5)
    assert optimizers == {"adam", "sgd"}


def test_hyperparams_refuse_unknown_names():
    with pytest.raises(ValueError, match="unknown hyperparameters \\['betta'\\]"):
        Hyperparams.from_dict({"betta": 0.9})


@pytest.mark.parametrize("dataset, arch", sorted(SEARCH_SPACES))
def test_first_trial_lies_inside_its_search_space(dataset, arch):
    space = SEARCH_SPACES[(dataset, arch)]
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial(space.first_trial)
    trial = study.ask()
    constants = space.define(trial) or {}
    assert trial.params.items() >= space.first_trial.items()
    for name, value in space.first_trial.items():
        distribution = trial.distributions[name]
        assert distribution._contains(distribution.to_internal_repr(value)), (name, value)
    Hyperparams.from_dict({**trial.params, **constants})
