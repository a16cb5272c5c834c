"""How a trial ended, defined once: its own module, so that the training loop can name a status without
loading the summary's statistics (scipy), which testing one checkpoint never needs."""

from __future__ import annotations

from enum import StrEnum


class TrialStatus(StrEnum):
    """How a trial ended: the one list of statuses the summary, the results table and the report use."""

    COMPLETED = "completed"  # ran every epoch of the budget
    STOPPED_EARLY = "stopped early"  # ASHA stopped it
    DIVERGED = "diverged"  # its loss became NaN or infinite; it stopped itself
    SILENT = "silent"  # a layer emitted no spike in the whole first epoch; it stopped itself
    SATURATED = "saturated"  # a layer fired at almost every step in the first epoch; it stopped itself
    STALLED = "stalled"  # its validation accuracy was still at chance after study.loop.STALLED_AFTER epochs; it stopped itself
    ERROR = "error"  # it raised, also after its retries


# Statuses of trials that stopped themselves because they could not learn (the searcher is told so);
# each is also the name of the metric the trial reported it with (study.loop.epoch_metrics).
FAILED_TO_LEARN = (TrialStatus.DIVERGED, TrialStatus.SILENT, TrialStatus.SATURATED, TrialStatus.STALLED)
SELF_STOPPING_METRICS = tuple(status.value for status in FAILED_TO_LEARN)
