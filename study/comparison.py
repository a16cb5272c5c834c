"""One Ray Tune experiment that searches several architectures side by side, each with its own Optuna and ASHA.

A comparison is fair when every architecture gets the same budget, the same data and the same
machines at the same time. `ComparisonSearch` holds one StudySearch (study.searcher) per architecture,
each with its own sampler and its own Optuna study (named after the architecture, in the one journal),
and hands out new trials in turn to the architecture that has had the fewest, until each has had its
`num_samples`. Every trial's config carries its "arch". `ComparisonScheduler` gives each architecture
its own ASHA, so trials are only ever compared, and stopped, against trials of their own architecture.
Ray then schedules all trials of all architectures at once across the cluster, in one experiment,
with one state to resume and one dashboard.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from study.config import ARCH_KEY
from study.files import write_atomically


class PickledState:
    """A searcher whose whole state pickles: Ray saves it with the experiment and restores it on --resume."""

    def save(self, checkpoint_path: str) -> None:
        write_atomically(Path(checkpoint_path), pickle.dumps(self.__dict__))

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))


class ComparisonSearch(PickledState, Searcher):
    """Per-architecture searchers, `num_samples` trials each, handed out in turn."""

    def __init__(self, searchers: dict, num_samples: int, metric: str, mode: str):
        super().__init__(metric=metric, mode=mode)
        self.searchers, self.num_samples = searchers, num_samples
        self.suggested = {arch: 0 for arch in searchers}
        self.owner: dict[str, str] = {}  # trial id -> architecture

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # metric and mode are the searchers' own

    def suggest(self, trial_id: str) -> dict | None:
        open_archs = [arch for arch, count in self.suggested.items() if count < self.num_samples]
        if not open_archs:
            return Searcher.FINISHED
        arch = min(open_archs, key=lambda name: self.suggested[name])  # the one with the fewest so far, in order
        config = self.searchers[arch].suggest(trial_id)
        if config is None or config == Searcher.FINISHED:
            return config
        self.suggested[arch] += 1
        self.owner[trial_id] = arch
        return {**config, ARCH_KEY: arch}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.owner:
            self.searchers[self.owner[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.owner:
            self.searchers[self.owner[trial_id]].on_trial_complete(trial_id, result=result, error=error)

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        for searcher in self.searchers.values():
            searcher.reconcile()


class ComparisonScheduler(FIFOScheduler):
    """One scheduler per architecture (ASHA for the searches): trials are stopped against their own kind only."""

    def __init__(self, schedulers: dict[str, TrialScheduler]):
        super().__init__()
        self.schedulers = schedulers

    def _of(self, trial) -> TrialScheduler:
        return self.schedulers[trial.config[ARCH_KEY]]

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return all(scheduler.set_search_properties(metric, mode, **spec) for scheduler in self.schedulers.values())

    def on_trial_add(self, tune_controller, trial) -> None:
        self._of(trial).on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial) -> None:
        self._of(trial).on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        return self._of(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self._of(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._of(trial).on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return "One scheduler per architecture: " + "; ".join(f"{arch}: {s.debug_string()}" for arch, s in self.schedulers.items())


class GivenConfigs(PickledState, Searcher):
    """Exactly these configs, one trial each, in order (the repeats: nothing left to search)."""

    def __init__(self, configs: list[dict]):
        super().__init__()
        self.configs, self.next = list(configs), 0

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True

    def suggest(self, trial_id: str) -> dict | None:
        if self.next >= len(self.configs):
            return Searcher.FINISHED
        self.next += 1
        return dict(self.configs[self.next - 1])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass
