"""The search: what Optuna is told about each trial, the study's journal, fixed values and presets."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search_spaces.common import LEARNING_RATES, as_hyperparams, field_of
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
    run_trial(search, "saturated", [0.2], {"saturated": True})
    trials = {t.number: t for t in search._ot_study.get_trials()}
    full, stopped, silent, broken, saturated = (trials[i] for i in range(5))
    assert full.state == TrialState.COMPLETE and full.value == 0.7 and full.intermediate_values == {1: 0.3, 2: 0.5, 3: 0.7}
    assert stopped.state == TrialState.PRUNED and stopped.intermediate_values == {1: 0.2, 2: 0.25}
    assert silent.state == TrialState.PRUNED and silent.user_attrs[FAILED_ATTRIBUTE] == "silent"
    assert saturated.state == TrialState.PRUNED and saturated.user_attrs[FAILED_ATTRIBUTE] == "saturated"
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


def test_the_optuna_journal_in_the_experiment_folder_keeps_its_trials_across_a_resume(tmp_path):
    """The study's searchers as build_tuner makes them (one Optuna study per architecture in the experiment's
    journal); Ray pickles the searcher with the tuner at the start and saves its state as trials end, and
    --resume unpickles the first and restores the second. Every trial told before the interruption stays in
    the journal, and the trials after it are added to the same studies."""
    import pickle

    from study.comparison import ComparisonSearch
    from study.config import METRIC, MODE
    from study.searcher import JOURNAL_FILE
    from study.tuning import searchers

    plan = TunePlan("exp", str(tmp_path), num_samples=4, gpus_per_trial=0, max_concurrent=1, archs=("cnn", "scnn"))
    search = ComparisonSearch(searchers(SETTINGS, plan), plan.num_samples, METRIC, MODE)
    as_started = pickle.dumps(search)  # what Ray keeps with the tuner

    def run(search, trial_id: str, accuracies: list[float]) -> None:
        search.suggest(trial_id)
        for epoch, accuracy in enumerate(accuracies[:-1], start=1):
            search.on_trial_result(trial_id, {"epoch": epoch, "val_acc": accuracy})
        search.on_trial_complete(trial_id, {"epoch": len(accuracies), "val_acc": accuracies[-1]})

    for number, accuracies in enumerate(([0.3, 0.5, 0.6], [0.2, 0.3], [0.4, 0.6, 0.7], [0.1])):
        run(search, f"before{number}", accuracies)
    search.save(str(tmp_path / "searcher-state.pkl"))
    journal = Path(plan.experiment_path) / JOURNAL_FILE

    def stored() -> dict[str, list]:
        return {
            arch: [(t.number, t.state, t.value, t.params, t.intermediate_values) for t in optuna.load_study(study_name=arch, storage=journal_storage(plan.experiment_path)).trials]
            for arch in plan.archs
        }

    before = stored()
    assert journal.is_file() and [len(trials) for trials in before.values()] == [2, 2]
    del search  # the interruption

    resumed = pickle.loads(as_started)
    resumed.restore(str(tmp_path / "searcher-state.pkl"))
    for number, accuracies in enumerate(([0.5, 0.6, 0.8], [0.3], [0.2, 0.4, 0.5], [0.6, 0.7, 0.9])):
        run(resumed, f"after{number}", accuracies)
    after = stored()
    for arch in plan.archs:
        assert after[arch][:2] == before[arch]  # the trials before the resume, as they were told
        assert [number for number, *_ in after[arch]] == [0, 1, 2, 3]  # then the new ones: nothing lost, nothing repeated
        assert all(state.is_finished() for _, state, *_ in after[arch])  # no first trial enqueued again by the resume
        assert len(resumed.searchers[arch]._ot_study.trials) == 4  # TPE proposes from the whole history
    assert resumed.suggest("one-too-many") == "FINISHED"


@pytest.mark.parametrize("dataset", ["mnist", "nmnist", "dvsgesture"])
def test_each_searchs_first_trial_is_its_datasets_first_trials_entry(dataset):
    """The first trial the study enqueues (Optuna's lr_adam) reaches the trainable as FIRST_TRIALS gives it (lr)."""
    from study.tuning import searchers

    settings = dataclasses.replace(SETTINGS, dataset=dataset)
    plan = TunePlan("x", "s3://bucket/results", num_samples=4, gpus_per_trial=0, max_concurrent=1, archs=("cnn", "scnn", "slstm"))
    for arch, search in searchers(settings, plan).items():
        config = search.suggest("first")
        assert config.items() >= SEARCH_SPACES[(dataset, arch)].first_trial.items(), arch
        assert Hyperparams.from_dict(config).lr == SEARCH_SPACES[(dataset, arch)].first_trial["lr"]


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
        name = trial.params["optimizer"]
        assert {param for param in trial.params if field_of(param) == "lr"} == {f"lr_{name}"}  # its own parameter only
        distribution = trial.distributions[f"lr_{name}"]
        assert (distribution.low, distribution.high) == LEARNING_RATES[name] and distribution.log
        study.tell(trial, 0.0)


def test_a_trials_config_holds_the_learning_rate_as_the_one_field_the_trainable_reads():
    search = searcher()
    configs = [search.suggest(str(number)) for number in range(12)]
    for config in configs:
        assert "lr" in config and not {"lr_adam", "lr_sgd", "slope_sigmoid", "slope_fast_sigmoid"} & set(config)
        assert Hyperparams.from_dict(config).lr == config["lr"]  # what study.trainable does with it
    assert {config["optimizer"] for config in configs} == {"adam", "sgd"}


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_fixed_learning_rate_is_used_whichever_optimizer_a_trial_gets(optimizer):
    """--fix lr=0.05 (above Adam's range): no learning rate is searched, every trial trains at 0.05."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    fixed = fixed_values("nmnist", None, ["lr=0.05", *([f"optimizer={optimizer}"] if optimizer == "sgd" else [])])
    seen = set()
    for _ in range(10):
        trial = study.ask()
        constants = space_of(SETTINGS, fixed)(trial)
        config = as_hyperparams({**trial.params, **constants})
        assert config["lr"] == 0.05 and not any(field_of(name) == "lr" for name in trial.params)
        seen.add(config["optimizer"])
        study.tell(trial, 0.0)
    assert seen == ({"adam", "sgd"} if optimizer == "adam" else {"sgd"})
    assert check_search(SETTINGS, fixed)["lr"] == 0.05


def test_grouped_tpe_models_each_optimizers_learning_rate_in_its_own_range():
    """The study's TPE (multivariate, grouped): after the random startup trials, SGD's learning rate is proposed
    by TPE's model of SGD trials, in SGD's range, above Adam's highest rate; not by the independent fallback
    Optuna uses for a parameter outside the grouped search space (as it did for one `lr` with two ranges)."""
    tpe = sampler(SETTINGS, TunePlan("x", "/tmp", num_samples=40, gpus_per_trial=0, max_concurrent=1))
    independent = []
    sample_independent = tpe.sample_independent

    def spy(study, trial, name, distribution):
        independent.append((trial.number, name))
        return sample_independent(study, trial, name, distribution)

    tpe.sample_independent = spy
    study = optuna.create_study(direction="maximize", sampler=tpe)
    space = space_of(dataclasses.replace(SETTINGS, dataset="mnist", arch="cnn"), {})
    best_sgd_lr = 0.05  # above Adam's range: SGD at large rates is what does best here
    sgd_rates = []
    for _ in range(40):
        trial = study.ask()
        space(trial)
        if trial.params["optimizer"] == "sgd":
            lr = trial.params["lr_sgd"]
            sgd_rates.append((trial.number, lr))
            study.tell(trial, 1.0 - abs(math.log10(lr / best_sgd_lr)))
        else:
            study.tell(trial, 0.2)
    startup = tpe._n_startup_trials
    grouped = tpe.infer_relative_search_space(study, study.trials[-1])
    assert grouped["lr_adam"] == optuna.distributions.FloatDistribution(*LEARNING_RATES["adam"], log=True)
    assert grouped["lr_sgd"] == optuna.distributions.FloatDistribution(*LEARNING_RATES["sgd"], log=True)
    first_sgd = min(number for number, _ in sgd_rates)
    modelled = [lr for number, lr in sgd_rates if number >= startup and number > first_sgd]
    assert not [name for number, name in independent if number > max(startup, first_sgd) and field_of(name) == "lr"]
    assert len(modelled) >= 10 and sum(lr > LEARNING_RATES["adam"][1] for lr in modelled) >= 0.8 * len(modelled)


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
            assert set(as_hyperparams(trial.params)) | set(constants) <= hyperparams_of(dataset, arch), (dataset, arch)
            study.tell(trial, 0.0)


def test_a_fixed_optimizer_drops_the_first_trials_learning_rate_of_another():
    first = first_trial(SETTINGS, {"optimizer": "sgd"})
    assert "lr" not in as_hyperparams(first) and first["batch_size"] == 32  # 2e-3 lies outside SGD's range
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
