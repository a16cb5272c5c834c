"""Builds the Ray Tune study: ASHA stops poor trials, Optuna's TPE proposes the next ones."""

from __future__ import annotations

from dataclasses import dataclass, field

from optuna.samplers import TPESampler
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from study.config import METRIC, MODE, StudySettings
from study.search import first_trial, quiet_optuna, space_of
from study.searcher import STUDY_NAME, StudySearch, journal_storage
from study.storage import experiment_path
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
    num_samples: int
    gpus_per_trial: float
    max_concurrent: int  # trials at once; without it Ray runs a custom searcher's trials one by one
    max_failures: int = 1  # retries of a trial that raised, from its last checkpoint
    fixed: dict = field(default_factory=dict)  # hyperparameters the study fixes (--preset, --fix): not searched

    @property
    def experiment_path(self) -> str:
        return experiment_path(self.storage, self.name)


def trainable(settings: StudySettings, plan: TunePlan, function=train_trial):
    """The function trainable with the fixed settings bound and the resources one trial holds.

    `function` is `train_trial` except in the fault-injection tests.
    """
    bound = tune.with_parameters(function, settings=settings)
    return tune.with_resources(bound, {"cpu": settings.cpus_per_trial, "gpu": plan.gpus_per_trial})


def startup_trials(num_samples: int) -> int:
    """Random trials before TPE models the results: a fifth of the budget, at least 2 (Optuna's default, 10, is half of 20)."""
    return max(2, num_samples // 5)


def sampler(settings: StudySettings, plan: TunePlan) -> TPESampler:
    """TPE over the joint distribution (`multivariate`), with conditional parameters in their own groups
    (`group`: the learning rate's range differs per optimizer, momentum exists only for SGD), and the
    trials still running counted as bad (`constant_liar`), so that concurrent trials spread out."""
    with quiet_optuna():  # `group` is marked experimental: the warning would repeat in every study's log
        return TPESampler(
            seed=settings.seed, n_startup_trials=startup_trials(plan.num_samples), multivariate=True, group=True, constant_liar=True
        )


def build_tuner(settings: StudySettings, plan: TunePlan, function=train_trial) -> tune.Tuner:
    """A new study. metric/mode go to the searcher and the scheduler (Ray rejects them in both places)."""
    with quiet_optuna():
        searcher = StudySearch(
            space=space_of(settings, plan.fixed),
            points_to_evaluate=[first_trial(settings, plan.fixed)],
            metric=METRIC,
            mode=MODE,
            sampler=sampler(settings, plan),
            storage=journal_storage(plan.experiment_path),
            study_name=STUDY_NAME,
            max_t=settings.max_epochs,
        )
    scheduler = ASHAScheduler(
        time_attr="epoch",  # the trial's own count: a trial restored from an older checkpoint repeats epochs
        metric=METRIC,
        mode=MODE,
        max_t=settings.max_epochs,
        grace_period=min(ASHA_GRACE_PERIOD, settings.max_epochs),
        reduction_factor=ASHA_REDUCTION_FACTOR,
    )
    return tune.Tuner(
        trainable(settings, plan, function),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=plan.num_samples,
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


def restore_tuner(settings: StudySettings, plan: TunePlan, function=train_trial) -> tune.Tuner:
    """Continue an interrupted study: finished trials stay, unfinished ones resume from their checkpoints."""
    # Errored trials already used their retries (--max-failures): they stay as they ended.
    return tune.Tuner.restore(plan.experiment_path, trainable=trainable(settings, plan, function))
