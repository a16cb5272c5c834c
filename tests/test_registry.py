"""The registry and the search spaces: every name resolves, every space yields valid hyperparameters."""

from __future__ import annotations

import optuna
import pytest
import torch

from search_spaces.common import LEARNING_RATES, SLOPES, as_hyperparams, as_params, field_of
from study.config import Hyperparams
from study.errors import UserError
from study.registry import ARCHITECTURES, DATASETS, SEARCH_SPACES, build_model, lookup, model_input_shape

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
        hp = Hyperparams.from_dict(as_hyperparams({**trial.params, **constants}))  # raises on a name Hyperparams lacks
        optimizers.add(hp.optimizer)
        assert ("momentum" in trial.params) == (hp.optimizer == "sgd")  # conditional parameter
        # The learning rate is asked under its optimizer's name, in that optimizer's range, and under no other.
        assert {name for name in trial.params if field_of(name) == "lr"} == {f"lr_{hp.optimizer}"}
        assert LEARNING_RATES[hp.optimizer][0] <= hp.lr <= LEARNING_RATES[hp.optimizer][1]
        if ARCHITECTURES[arch].spiking:
            assert SPIKING_SEARCHED <= set(as_hyperparams(trial.params))
            assert {name for name in trial.params if field_of(name) == "slope"} == {f"slope_{hp.surrogate}"}
            assert SLOPES[hp.surrogate][0] <= hp.slope <= SLOPES[hp.surrogate][1]
            assert 0 < hp.beta < 1 and hp.threshold > 0 and hp.num_steps >= 5 and hp.population >= 1
        study.tell(trial, 0.5)
    assert optimizers == {"adam", "sgd"}


def test_hyperparams_refuse_unknown_names():
    with pytest.raises(ValueError, match="unknown hyperparameters \\['betta'\\]"):
        Hyperparams.from_dict({"betta": 0.9})


@pytest.mark.parametrize("dataset, arch", sorted(SEARCH_SPACES))
def test_first_trial_lies_inside_its_search_space_and_builds(dataset, arch):
    """Each dataset's FIRST_TRIALS entry: every value it gives is one the space asks, inside its range; with
    the space's constants it is a valid configuration whose model builds and scores a batch."""
    space = SEARCH_SPACES[(dataset, arch)]
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial(as_params(space.first_trial))
    trial = study.ask()
    constants = space.define(trial) or {}
    asked = as_hyperparams(trial.params)
    assert asked.items() >= space.first_trial.items()  # every value was asked (none ignored), and taken
    for name, value in trial.params.items():
        distribution = trial.distributions[name]
        assert distribution._contains(distribution.to_internal_repr(value)), (name, value)
    hp = Hyperparams.from_dict({**asked, **constants})
    torch.manual_seed(0)
    model = build_model(dataset, arch, hp).eval()
    frame = model_input_shape(dataset, arch, hp)
    x = torch.rand(hp.num_steps, 2, *frame) if ARCHITECTURES[arch].spiking else torch.rand(2, *frame)
    with torch.no_grad():
        scores = model(x)
    assert scores.shape == (2, DATASETS[dataset].source.num_classes) and torch.isfinite(scores).all()
