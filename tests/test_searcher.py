"""The search: what Optuna is told about each trial, the study's journal, fixed values and presets."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search_spaces.common import LEARNING_RATES
from study.config import Hyperparams, StudySettings
from study.errors import UserError
from study.search import check_search, first_trial, fixed_values, space_of
from study.loop import above_chance
from study.registry import SEARCH_SPACES, hyperparams_of
from study.searcher import FAILED_ATTRIBUTE, STUDY_NAME, StudySearch, journal_storage
from study.tuning import TunePlan, sampler, startup_trials

SETTINGS = StudySettings("nmnist", "scnn", Path("data"), max_epochs=3)


def searcher(storage=None) -> StudySearch:
    return StudySearch(
        space=space_of(SETTINGS, {}), metric="val_acc", mode="max", max_t=3, storage=storage, study_name=STUDY_NAME,
        sampler=optuna.samplers.RandomSampler(seed=0),
    )


def run_trial(search: StudySearch, trial_id: str, accuracies: list[float], last_extra: dict | None = None, error: bool = False):
    search.suggest(trial_id)
    results = [{"epoch": epoch, "val_acc": acc} for epoch, acc in enumerate(accuracies, start=1)]
    for result in results[:-1]:
        search.on_trial_result(trial_id, result)
    # Ray hands the searcher the result the scheduler stopped the trial on only at completion.
    search.on_trial_complete(trial_id, result=None if error else {**results[-1], **(last_extra or {})}, error=error)


def test_optuna_learns_how_each_trial_really_ended():
    search = searcher()
    run_trial(search, "full", [0.3, 0.5, 0.7])
    run_trial(search, "stopped", [0.2, 0.25])  # ASHA stopped it after epoch 2
    run_trial(search, "silent", [0.1], {"silent": True})
    run_trial(search, "broken", [0.1], error=True)
    trials = {t.number: t for t in search._ot_study.get_trials()}
    full, stopped, silent, broken = (trials[i] for i in range(4))
    assert full.state == TrialState.COMPLETE and full.value == 0.7 and full.intermediate_values == {1: 0.3, 2: 0.5, 3: 0.7}
    assert stopped.state == TrialState.PRUNED and stopped.intermediate_values == {1: 0.2, 2: 0.25}
    assert silent.state == TrialState.PRUNED and silent.user_attrs[FAILED_ATTRIBUTE] == "silent"
    assert broken.state == TrialState.FAIL


def test_a_multi_objective_search_tells_accuracy_and_energy_of_complete_trials_only():
    search = StudySearch(
        space=space_of(SETTINGS, {}), metric=["val_acc", "energy_pj"], mode=["max", "min"], max_t=3, study_name=STUDY_NAME,
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=2, multivariate=True, constant_liar=True),
    )
    for trial_id, accuracies, energy in (("a", [0.3, 0.5, 0.7], 900.0), ("b", [0.4, 0.6, 0.65], 300.0), ("c", [0.2], 100.0)):
        search.suggest(trial_id)
        for epoch, accuracy in enumerate(accuracies, start=1):
            result = {"epoch": epoch, "val_acc": accuracy, "energy_pj": energy}
            if epoch < len(accuracies):
                search.on_trial_result(trial_id, result)
        search.on_trial_complete(trial_id, result=result)
    a, b, c = search._ot_study.get_trials()
    assert a.values == [0.7, 900.0] and b.values == [0.65, 300.0] and a.intermediate_values == {}
    assert c.state == TrialState.PRUNED and c.values is None  # ASHA stopped it after epoch 1
    # TPE ranks trials with a positive constraint after every feasible one, the smaller the better: stopped
    # trials come after the complete ones, ordered by how far they got (Optuna would otherwise tie them all).
    assert a.constraints == b.constraints == {"epochs_short": 0.0} and c.constraints == {"epochs_short": 2.0}
    assert {t.number for t in search._ot_study.best_trials} == {0, 1}  # neither beats the other on both
    assert search.suggest("d") is not None  # TPE proposes from the two-objective history


def test_a_repeated_epoch_keeps_its_first_report():
    search = searcher()
    search.suggest("t")
    search.on_trial_result("t", {"epoch": 1, "val_acc": 0.4})
    search.on_trial_result("t", {"epoch": 1, "val_acc": 0.9})  # resumed from an older checkpoint
    search.on_trial_complete("t", {"epoch": 2, "val_acc": 0.5})
    assert search._ot_study.trials[0].intermediate_values == {1: 0.4, 2: 0.5}


def test_the_journal_survives_a_restore_that_ran_behind_it(tmp_path):
    """Ray saves the searcher every few seconds; the journal may hold trials finished (or started) after that."""
    search = searcher(journal_storage(str(tmp_path)))
    run_trial(search, "a", [0.3, 0.4, 0.5])
    search.suggest("b")
    search.on_trial_result("b", {"epoch": 1, "val_acc": 0.2})
    search.save(str(tmp_path / "searcher.pkl"))
    search.on_trial_complete("b", {"epoch": 3, "val_acc": 0.6})  # finished after the save...
    search.suggest("c")  # ...and c was asked after it: no Ray trial will finish it

    restored = searcher(journal_storage(str(tmp_path)))
    restored.restore(str(tmp_path / "searcher.pkl"))
    restored.on_trial_result("b", {"epoch": 2, "val_acc": 0.3})  # Ray runs b again: no error, no second record
    restored.on_trial_complete("b", {"epoch": 3, "val_acc": 0.6})
    states = [t.state for t in optuna.load_study(study_name=STUDY_NAME, storage=journal_storage(str(tmp_path))).trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL]
    assert (tmp_path / "optuna.journal").is_file()


def test_remote_experiments_keep_the_study_in_memory():
    assert journal_storage("s3://bucket/results/name") is None


def test_tpe_spends_a_fifth_of_the_budget_at_random_and_models_parameters_jointly():
    assert [startup_trials(n) for n in (4, 10, 20, 50)] == [2, 2, 4, 10]
    tpe = sampler(SETTINGS, TunePlan("x", "/tmp", num_samples=20, gpus_per_trial=0, max_concurrent=1))
    assert tpe._n_startup_trials == 4 and tpe._multivariate and tpe._group and tpe._constant_liar


def test_each_optimizer_searches_its_own_learning_rates():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(40):
        trial = study.ask()
        space_of(SETTINGS, {})(trial)
        low, high = LEARNING_RATES[trial.params["optimizer"]]
        assert low <= trial.params["lr"] <= high
        study.tell(trial, 0.0)


def test_fixed_values_are_not_searched_and_reach_every_trial():
    fixed = fixed_values("nmnist", "nmnist-csnn", ["readout=membrane_max", "num_steps=20", "learn_beta=true"])
    assert fixed["blocks"] == 2 and fixed["batch_norm"] is True and fixed["num_steps"] == 20 and fixed["learn_beta"] is True
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        config = {**space_of(SETTINGS, fixed)(trial)}
        assert not set(fixed) & set(trial.params)  # Optuna never asked for them
        assert config.items() >= fixed.items()
        study.tell(trial, 0.0)
    assert first_trial(SETTINGS, fixed).keys().isdisjoint(fixed)


def test_a_comparisons_fixed_values_reach_only_the_architectures_that_read_them():
    fixed = fixed_values("nmnist", "nmnist-csnn", ["beta=0.9", "time_bins=4"], ("cnn", "scnn"))
    cnn, scnn = (dataclasses.replace(SETTINGS, arch=arch) for arch in ("cnn", "scnn"))
    cnn_config, scnn_config = check_search(cnn, fixed), check_search(scnn, fixed)
    assert cnn_config["time_bins"] == 4 and "beta" not in cnn_config and "num_steps" not in cnn_config
    assert scnn_config["beta"] == 0.9 and scnn_config["num_steps"] == 16 and "time_bins" not in scnn_config
    assert cnn_config["blocks"] == scnn_config["blocks"] == 2  # the preset's capacity: the same for both


@pytest.mark.parametrize(
    "dataset, archs, fix, says",
    [
        ("mnist", ("cnn",), "beta=0.5", "--fix beta=0.5: beta does not apply to cnn (only scnn and slstm on mnist read it)"),
        ("nmnist", ("cnn", "scnn"), "hidden=64", "hidden does not apply to cnn or scnn (only slstm on nmnist reads it)"),
        ("mnist", ("cnn", "scnn", "slstm"), "time_bins=4", "no architecture reads it on mnist"),
    ],
)
def test_a_fix_that_no_architecture_of_the_study_reads_is_refused(dataset, archs, fix, says):
    with pytest.raises(UserError, match=re.escape(says)):
        fixed_values(dataset, None, [fix], archs)


def test_every_searched_and_every_hyperparameter_is_read_by_some_architecture():
    every = set().union(*(hyperparams_of(dataset, arch) for dataset, arch in SEARCH_SPACES))
    assert every == {field.name for field in dataclasses.fields(Hyperparams)}
    for (dataset, arch), space in SEARCH_SPACES.items():
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(20):
            trial = study.ask()
            constants = space.define(trial, fixed={})
            assert set(trial.params) | set(constants) <= hyperparams_of(dataset, arch), (dataset, arch)
            study.tell(trial, 0.0)


def test_a_fixed_optimizer_drops_the_first_trials_learning_rate_of_another():
    first = first_trial(SETTINGS, {"optimizer": "sgd"})
    assert "lr" not in first  # 2e-3 lies outside SGD's range
    assert check_search(SETTINGS, {"optimizer": "sgd"})["optimizer"] == "sgd"


@pytest.mark.parametrize(
    "preset, fixes, says",
    [
        ("dvsgesture-dvs128", [], "Unknown preset 'dvsgesture-dvs128' for nmnist. Presets for nmnist: nmnist-csnn"),
        (None, ["readout=votes"], "Unknown readout 'votes'. Valid readouts: membrane_max, membrane_mean, spikes."),
        (None, ["blocks=6"], "blocks=6 do not fit a 34x34 input"),
        (None, ["betta=0.9"], "Unknown hyperparameter 'betta'"),
        (None, ["num_steps=many"], "num_steps takes a whole number"),
        (None, ["optimizer=rmsprop"], "Unknown optimizer 'rmsprop'. Valid optimizers: adam, sgd."),
        (None, ["beta"], "write NAME=VALUE"),
    ],
)
def test_bad_presets_names_and_capacities_are_refused_before_any_trial(preset, fixes, says):
    with pytest.raises(UserError, match=says):
        check_search(SETTINGS, fixed_values("nmnist", preset, fixes))


def test_above_chance_is_a_binomial_test_on_the_validation_set():
    assert not above_chance(2 / 13, 13, 11)  # 2 of 13 recordings: could be luck at 1 in 11
    assert above_chance(4 / 13, 13, 11)
    assert not above_chance(0.12, 600, 10) and above_chance(0.14, 600, 10)


def test_the_search_benchmark_counts_trials_above_chance_and_epochs_spent_on_chance(tmp_path):
    from study.search_bench import outcome_of, totals
    from study.summary import Architecture, Summary, TrialRecord, TrialStatus

    histories = {"learner": [0.5, 0.8, 0.9], "late": [0.1, 0.6, 0.7], "hopeless": [0.1, 0.1]}
    trials = []
    for name, accuracies in histories.items():
        folder = tmp_path / f"trial_{name}"
        folder.mkdir()
        rows = ["epoch,val_acc,val_samples", *(f"{epoch},{acc},300" for epoch, acc in enumerate(accuracies, start=1))]
        (folder / "progress.csv").write_text("\n".join(rows) + "\n")
        status = TrialStatus.STALLED if name == "hopeless" else TrialStatus.COMPLETED
        trials.append(TrialRecord(name, {"lr": 0.1}, status, len(accuracies), {}, None, str(folder)))
    summary = Summary("mnist", True, "val_acc", "max", 3, str(tmp_path), (Architecture("cnn", False, "", None, tuple(trials)),))
    (tmp_path / "summary.json").write_text(summary.to_json())
    outcome = outcome_of(tmp_path, "mnist-synthetic", "cnn", 10, seconds=1.0)
    assert outcome.trials == 3 and outcome.above_chance_after_epoch_1 == pytest.approx(1 / 3)  # "late" was still at chance
    assert outcome.epochs == 8 and outcome.epochs_on_chance_trials == pytest.approx(2 / 8)  # only "hopeless" ended there
    assert outcome.failed_to_learn == 1 and [status for status, _, _ in outcome.at_chance_after_epoch_1] == ["completed", "stalled"]
    assert totals([outcome, outcome])["epochs_on_chance_trials"] == pytest.approx(0.25)
