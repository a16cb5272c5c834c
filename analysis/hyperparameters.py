"""What the search varied, on which scale, and which choice mattered most (Optuna's PED-ANOVA).

Importance is computed by replaying the trials into an in-memory Optuna study
(`optuna.trial.create_trial`): each trial's score is its best validation METRIC, and each
parameter's distribution spans the values the trials took. PED-ANOVA is Optuna's default
evaluator and needs no scikit-learn (fANOVA and mean-decrease-impurity do; scikit-learn is a
development dependency only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from analysis.experiment import ArchitectureResult, Trial
from search_spaces.common import as_params, field_of
from study.config import MODE
from study.registry import SEARCH_SPACES
from study.search import quiet_optuna

IMPORTANCE_METHOD = "PED-ANOVA"
IMPORTANCE_EVALUATOR = "optuna.importance.PedAnovaImportanceEvaluator"  # Optuna's default evaluator
# Below this many trials an importance is shown with a caution: Optuna suggests at least 5 in the top 10 %.
FEW_TRIALS = 10


@dataclass(frozen=True)
class Importance:
    values: dict[str, float]  # parameter -> share of the total importance, largest first, summing to 1
    trials: int  # how many scored trials it rests on
    method: str = IMPORTANCE_METHOD

    @property
    def caution(self) -> str:
        return " (few trials: treat as indicative only)" if self.trials < FEW_TRIALS else ""


def searched_values(trials: list[Trial]) -> dict[str, list]:
    """Parameter -> its value in each trial (None where a conditional parameter was absent), for every
    parameter that took at least two different values: what the search actually explored."""
    names = sorted({name for trial in trials for name in trial.config})
    table = {name: [trial.config.get(name) for trial in trials] for name in names}
    return {name: values for name, values in table.items() if len({v for v in values if v is not None}) >= 2}


def log_scaled(experiment: ArchitectureResult) -> set[str]:
    """Parameters the study's search space draws on a log scale, asked of the define-by-run space itself.

    Every trial's config is replayed (enqueued) so that conditional branches the search took are seen.
    """
    space = SEARCH_SPACES.get((experiment.dataset, experiment.arch))
    if space is None:
        return set()
    names: set[str] = set()
    with quiet_optuna():
        study = optuna.create_study()
        for trial in experiment.trials:
            study.enqueue_trial(as_params(trial.config), skip_if_exists=False)
            asked = study.ask()
            space.define(asked)
            names |= {field_of(name) for name, dist in asked.distributions.items() if getattr(dist, "log", False)}
    return names


@dataclass(frozen=True)
class Search:
    """What one study's search explored: its scored trials, the parameters that varied, which are on a log scale."""

    trials: list[Trial]  # the trials with a score, in the experiment's order
    values: dict[str, list]  # searched_values(trials)
    logs: set[str]  # log_scaled(experiment)

    @property
    def scores(self) -> np.ndarray:
        return np.array([trial.score for trial in self.trials])


def search_of(experiment: ArchitectureResult) -> Search | None:
    """The study's search, or None when no hyperparameter took two different values in its scored trials."""
    trials = experiment.scored_trials
    values = searched_values(trials)
    return Search(trials, values, log_scaled(experiment)) if values else None


def infer_distribution(values: list, log: bool) -> BaseDistribution:
    """The narrowest Optuna distribution that holds `values` (None entries ignored)."""
    present = [value for value in values if value is not None]
    if all(isinstance(value, (bool, str)) for value in present):
        return CategoricalDistribution(sorted(set(present), key=str))
    low, high = min(present), max(present)
    if all(isinstance(value, int) for value in present):
        return IntDistribution(low, high, log=log and low > 0)
    return FloatDistribution(float(low), float(high), log=log and low > 0)


def parameter_importance(experiment: ArchitectureResult) -> Importance | str:
    """Normalized importances of the searched parameters for reaching a high score, or why there are none."""
    scored = len(experiment.scored_trials)
    if scored < 2:
        return f"parameter importance needs at least 2 trials with a validation score; this study has {scored}"
    search = search_of(experiment)
    if search is None:
        return "no hyperparameter took two different values in this study's trials"
    trials = search.trials
    distributions = {name: infer_distribution(values, name in search.logs) for name, values in search.values.items()}
    with quiet_optuna():
        study = optuna.create_study(direction="maximize" if MODE == "max" else "minimize")
        for trial in trials:
            present = {name: trial.config[name] for name in search.values if trial.config.get(name) is not None}
            study.add_trial(
                optuna.trial.create_trial(
                    params=present, distributions={name: distributions[name] for name in present}, value=trial.score
                )
            )
        raw = optuna.importance.get_param_importances(study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(), normalize=False)
    total = sum(raw.values())
    if total <= 0:
        return f"PED-ANOVA found no difference between the best of the {len(trials)} trials and the rest"
    shares = {name: round(value / total, 9) for name, value in raw.items()}  # rounded: ties compare equal
    return Importance(dict(sorted(shares.items(), key=lambda item: (-item[1], item[0]))), len(trials))
