"""Ray Tune's OptunaSearch, telling Optuna how each trial really ended, with the study kept in the experiment folder.

Ray 2.60's OptunaSearch records a trial that ASHA stopped as COMPLETE with the score of the epoch it
stopped at (ray/tune/search/optuna/optuna_search.py, `on_trial_complete`), so TPE learns from
early-epoch scores as if they were final. `StudySearch` tells Optuna instead:
- a trial that ran every epoch: COMPLETE, with its last score;
- a trial ASHA stopped early: PRUNED, with its per-epoch scores as intermediate values (Optuna
  then ranks it by how far it got and how well it did there);
- a trial that stopped itself because it cannot learn (diverged, silent, saturated, stalled): PRUNED at the
  epoch it stopped, with the reason as the user attribute "failed". Not FAIL: TPE ignores failed
  trials altogether (optuna/samplers/_tpe/sampler.py keeps COMPLETE and PRUNED ones only), so it would
  keep proposing the region the trial came from; as a pruned trial at epoch 1 it ranks below every
  trial that got further;
- a trial that raised after its retries: FAIL.

Optuna's parameters and a trial's config differ in one way: a field searched with a range per earlier
choice is one Optuna parameter per choice (`lr_adam`, `lr_sgd`), so that TPE's groups model each range;
`suggest` hands the trial the field (`lr`).

With several objectives (--objective accuracy,energy) a COMPLETE trial is told all its last values and
Optuna's TPE searches their Pareto front. Optuna takes no intermediate values in a multi-objective
study, so TPE would rank every PRUNED trial alike, and fill its "good" group with the earliest of them
while few trials are complete. Each trial gets the constraint "epochs_short" instead (epochs it did not
run: 0 for a complete trial): TPE ranks the stopped ones after every complete trial, the further a
trial got the better, and the Pareto front holds complete trials only.

The Optuna study lives in a journal file in the experiment folder (`optuna.journal`, for
optuna-dashboard) when the experiment is on a local or shared disk. Ray pickles the searcher with
its state only every few seconds, so a study killed in between finds the journal ahead of the
searcher; `restore` reconciles the two.
"""

from __future__ import annotations

import math
from pathlib import Path

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from search_spaces.common import as_hyperparams
from study.summary import SELF_STOPPING_METRICS

JOURNAL_FILE = "optuna.journal"
STUDY_NAME = "snn-study"
FAILED_ATTRIBUTE = "failed"  # Optuna user attribute: why a trial stopped itself
EPOCHS_SHORT = "epochs_short"  # Optuna constraint of a multi-objective study: epochs a trial did not run


def journal_storage(experiment: str) -> optuna.storages.BaseStorage | None:
    """A journal file in the experiment folder; None (Optuna's memory) for remote storage such as s3://."""
    if "://" in experiment:
        return None
    path = Path(experiment) / JOURNAL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


class StudySearch(OptunaSearch):
    """OptunaSearch with trial outcomes as the module docstring says; `max_t` is ASHA's, in `time_attr` units."""

    def __init__(self, *args, max_t: int, time_attr: str = "epoch", **kwargs):
        super().__init__(*args, **kwargs)
        self._max_t, self._time_attr = max_t, time_attr
        self._reported: dict[str, set[int]] = {}  # trial id -> epochs told to Optuna (pickled with the searcher)

    def suggest(self, trial_id: str) -> dict | None:
        """Optuna's proposal as the trial's config, in Hyperparams fields: Optuna's `lr_sgd` (a learning-rate
        range per optimizer, search_spaces.common.PER_CHOICE) reaches the trial as `lr`."""
        config = super().suggest(trial_id)
        return as_hyperparams(config) if isinstance(config, dict) else config

    @property
    def objectives(self) -> list[str]:
        """The metrics told to Optuna: accuracy first (what ASHA and the pruned ranks use), then any others."""
        return list(self.metric) if isinstance(self.metric, list) else [self.metric]

    def _tell_step(self, trial_id: str, result: dict) -> None:
        if len(self.objectives) > 1:
            return  # multi-objective studies take no intermediate values
        step, value = result.get(self._time_attr), result.get(self.metric)
        if step is None or value is None or not math.isfinite(value) or step in self._reported.setdefault(trial_id, set()):
            return  # a trial resumed from an older checkpoint repeats epochs: the first report stands
        self._ot_trials[trial_id].report(value, int(step))
        self._reported[trial_id].add(step)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._ot_trials and trial_id not in self._completed_trials:
            self._tell_step(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        result = result or {}
        ot_trial = self._ot_trials[trial_id]
        value = result.get(self.objectives[0])
        if error or value is None:
            state, value = TrialState.FAIL, None
        else:
            self._tell_step(trial_id, result)  # the result ASHA stopped the trial on never reached on_trial_result
            reason = next((problem for problem in SELF_STOPPING_METRICS if result.get(problem)), None)
            if reason is not None:
                ot_trial.set_user_attr(FAILED_ATTRIBUTE, reason)
            values = [result.get(metric) for metric in self.objectives]
            finite = all(v is not None and math.isfinite(v) for v in values)
            ran = result.get(self._time_attr, 0)
            if reason is None and ran >= self._max_t and finite:
                state, value = TrialState.COMPLETE, values if len(values) > 1 else value
            else:
                state, value = TrialState.PRUNED, None  # Optuna takes the last intermediate value
            if len(values) > 1:
                ot_trial.set_constraint(EPOCHS_SHORT, 0 if state == TrialState.COMPLETE else max(1, self._max_t - ran))
        self._ot_study.tell(ot_trial, value, state=state, skip_if_finished=True)
        self._completed_trials.add(trial_id)

    def restore(self, checkpoint_path: str) -> None:
        """The searcher as Ray last saved it, reconciled with a journal that ran ahead of that state."""
        super().restore(checkpoint_path)
        self.reconcile()

    def reconcile(self) -> None:
        """After a restore: trials the journal finished, or asked for, after the saved state was written."""
        storage = self._ot_study._storage
        for trial_id, ot_trial in self._ot_trials.items():
            # Finished in the journal after Ray's last save: Ray runs the trial again, Optuna keeps its first record.
            if trial_id not in self._completed_trials and storage.get_trial(ot_trial._trial_id).state.is_finished():
                self._completed_trials.add(trial_id)
        known = {ot_trial._trial_id for ot_trial in self._ot_trials.values()}
        for frozen in self._ot_study.get_trials(deepcopy=False, states=[TrialState.RUNNING]):
            if frozen._trial_id not in known:  # asked after Ray's last save: no Ray trial will ever finish it
                self._ot_study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)
