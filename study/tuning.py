"""Builds the Ray Tune study: ASHA stops poor trials, Optuna's TPE proposes the next ones."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from optuna.samplers import TPESampler
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from study.config import ARCH_KEY, METRIC, MODE, REPEAT_KEY, StudySettings
from study.search import first_trial, quiet_optuna, space_of
from study.comparison import ComparisonScheduler, ComparisonSearch, GivenConfigs
from study.searcher import StudySearch, journal_storage
from study.config import REPEATS, experiment_path
from study.trainable import train_trial

# ASHA: every trial gets at least one epoch; at each rung (1, 2, 4, ... epochs) the better half goes on.
ASHA_GRACE_PERIOD = 1
ASHA_REDUCTION_FACTOR = 2
# Keep the two best checkpoints of each trial (by METRIC): the export needs the best, disk stays bounded.
CHECKPOINTS_KEPT = 2


@dataclass(frozen=True)
class TunePlan:
    """How the study is scheduled (as opposed to what each trial trains on: StudySettings)."""

    name: str
    storage: str  # absolute local path or a URI (s3://, gs://, ...) that every node can reach
    num_samples: int  # trials per architecture
    gpus_per_trial: float
    max_concurrent: int  # trials at once; without it Ray runs a custom searcher's trials one by one
    max_failures: int = 1  # retries of a trial that raised, from its last checkpoint
    fixed: dict = field(default_factory=dict)  # hyperparameters the study fixes (--preset, --fix): not searched
    archs: tuple[str, ...] = ()  # the architectures compared; () is settings.arch alone
    repeats: int = 0  # per architecture, trainings of its best configuration from scratch with new seeds

    @property
    def experiment_path(self) -> str:
        return experiment_path(self.storage, self.name)

    @property
    def repeats_path(self) -> str:
        """The repeats' own Ray experiment, inside the study's folder."""
        return f"{self.experiment_path}/{REPEATS}"

    def architectures(self, settings: StudySettings) -> tuple[str, ...]:
        return self.archs or (settings.arch,)


def trainable(settings: StudySettings, plan: TunePlan, function=train_trial):
    """The function trainable with the fixed settings bound and the resources one trial holds.

    `function` is `train_trial` except in the fault-injection tests.
    """
    bound = tune.with_parameters(function, settings=settings)
    return tune.with_resources(bound, {"cpu": settings.cpus_per_trial, "gpu": plan.gpus_per_trial})


def startup_trials(num_samples: int) -> int:
    """Random trials before TPE models the results: a fifth of the budget, at least 2 (Optuna's default, 10, is half of 20)."""
    return max(2, num_samples // 5)


def sampler(settings: StudySettings, plan: TunePlan, offset: int = 0) -> TPESampler:
    """TPE over the joint distribution (`multivariate`), with conditional parameters in their own groups
    (`group`: momentum and `lr_sgd`, SGD's learning rate, exist only for SGD trials, `lr_adam` only for Adam's), and the
    trials still running counted as bad (`constant_liar`), so that concurrent trials spread out.
    `offset` gives each architecture of a comparison its own seed."""
    with quiet_optuna():  # `group` is marked experimental: the warning would repeat in every study's log
        return TPESampler(
            seed=settings.seed + offset,
            n_startup_trials=startup_trials(plan.num_samples),
            multivariate=True,
            group=True,
            constant_liar=True,
        )


def asha(settings: StudySettings) -> ASHAScheduler:
    return ASHAScheduler(
        time_attr="epoch",  # the trial's own count: a trial restored from an older checkpoint repeats epochs
        metric=METRIC,
        mode=MODE,
        max_t=settings.max_epochs,
        grace_period=min(ASHA_GRACE_PERIOD, settings.max_epochs),
        reduction_factor=ASHA_REDUCTION_FACTOR,
    )


def searchers(settings: StudySettings, plan: TunePlan) -> dict[str, StudySearch]:
    """One StudySearch per architecture, each its own Optuna study (named after it) in the experiment's journal."""
    storage = journal_storage(plan.experiment_path)
    found = {}
    with quiet_optuna():
        for offset, arch in enumerate(plan.architectures(settings)):
            ours = dataclasses.replace(settings, arch=arch)
            found[arch] = StudySearch(
                space=space_of(ours, plan.fixed),
                points_to_evaluate=[first_trial(ours, plan.fixed)],
                metric=settings.metrics if len(settings.metrics) > 1 else METRIC,
                mode=settings.modes if len(settings.modes) > 1 else MODE,
                sampler=sampler(settings, plan, offset),
                storage=storage,
                study_name=arch,
                max_t=settings.max_epochs,
            )
    return found


def build_tuner(settings: StudySettings, plan: TunePlan, function=train_trial) -> tune.Tuner:
    """A new study: every architecture's search at once, each with its own Optuna and ASHA (study.comparison)."""
    archs = plan.architectures(settings)
    search = ComparisonSearch(searchers(settings, plan), plan.num_samples, METRIC, MODE)
    return tune.Tuner(
        trainable(settings, plan, function),
        tune_config=tune.TuneConfig(
            search_alg=search,
            scheduler=ComparisonScheduler({arch: asha(settings) for arch in archs}),
            num_samples=plan.num_samples * len(archs),
            max_concurrent_trials=plan.max_concurrent,
            trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",
        ),
        run_config=tune.RunConfig(
            name=plan.name,
            storage_path=plan.storage,
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=CHECKPOINTS_KEPT,
                checkpoint_score_attribute=METRIC,
                checkpoint_score_order=MODE,
            ),
            failure_config=tune.FailureConfig(max_failures=plan.max_failures),
        ),
    )


def build_repeat_tuner(settings: StudySettings, plan: TunePlan, configs: list[dict], function=train_trial) -> tune.Tuner:
    """The repeats: each config (a best configuration with its "arch", "seed" and "repeat") trained once, to the end."""
    return tune.Tuner(
        trainable(settings, plan, function),
        tune_config=tune.TuneConfig(
            search_alg=GivenConfigs(configs),
            num_samples=len(configs),
            max_concurrent_trials=plan.max_concurrent,
            trial_dirname_creator=lambda trial: f"repeat_{trial.config[ARCH_KEY]}_{trial.config[REPEAT_KEY]}_{trial.trial_id}",
        ),
        run_config=tune.RunConfig(
            name=REPEATS,
            storage_path=plan.experiment_path,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),  # the last: it holds the tested model and its predictions
            failure_config=tune.FailureConfig(max_failures=plan.max_failures),
        ),
    )


def restore_tuner(path: str, settings: StudySettings, plan: TunePlan, function=train_trial) -> tune.Tuner:
    """Continue an interrupted phase (the searches, or the repeats at `path`): finished trials stay,
    unfinished ones resume from their checkpoints."""
    # Errored trials already used their retries (--max-failures): they stay as they ended.
    return tune.Tuner.restore(path, trainable=trainable(settings, plan, function))
