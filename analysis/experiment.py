"""One finished experiment folder, read for analysis: settings, summary, per-trial histories, checkpoints.

An experiment is `<storage>/<name>` as `python -m study.run` leaves it: `study.json` (how it was
started), `summary.json` (written when it ends) and one `trial_<id>/` folder per trial holding
`progress.csv` (one row per epoch) and `checkpoint_<n>/checkpoint.pth`. Paths are taken relative
to the folder, so an experiment that was moved or copied still reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from analysis.content import plural
from study.checkpoint import TRIAL_CHECKPOINT_FILE, read_checkpoint
from study.config import METRIC, MODE, REPEATS, STUDY_FILE
from study.errors import UserError, lookup
from study.invocation import RecordedSettings
from study.loop import EPOCH_METRICS
from study.naming import default_name, model_on_data
from study.registry import DatasetAndArch
from study.summary import SUMMARY_FILE, Architecture, BestModel, Summary, TrialStatus, read_summary

RESULTS_DIR = Path("results")  # the default --storage of python -m study.run
HISTORY_COLUMNS = ("epoch", *EPOCH_METRICS)


@dataclass(frozen=True, eq=False)
class Trial:
    trial_id: str
    config: dict  # what the search chose for this trial
    status: TrialStatus
    epochs: int
    last: dict  # summary.json's metrics of its last epoch
    history: pd.DataFrame  # one row per epoch: HISTORY_COLUMNS that the trial reported
    checkpoint: Path | None  # its last checkpoint, None when it never saved one

    @property
    def score(self) -> float | None:
        """The trial's best METRIC over its epochs (what Tune ranks its checkpoints by), None without one.

        Without a readable progress.csv, the last epoch's value from summary.json stands in.
        """
        values = self.history[METRIC].dropna() if METRIC in self.history else pd.Series(dtype=float)
        if values.empty:
            return self.last.get(METRIC)
        return float(values.max() if MODE == "max" else values.min())


@dataclass(frozen=True, eq=False)
class ArchitectureResult(DatasetAndArch):
    """One architecture of a finished study (a comparison's experiment folder holds one per architecture)."""

    name: str  # the folder's name; with several architectures, the folder's name and the architecture
    path: Path  # the experiment folder
    settings: RecordedSettings  # what the analysis reads of study.json's settings
    summary: Summary  # summary.json: every architecture of the study
    architecture: Architecture  # this one's search, best model and repeats
    trials: tuple[Trial, ...]
    best_checkpoint: Path  # the exported best model, or the best trial's checkpoint where it is gone

    @property
    def dataset(self) -> str:
        return self.summary.dataset

    @property
    def arch(self) -> str:
        return self.architecture.arch

    @property
    def synthetic(self) -> bool:
        return self.summary.synthetic

    @property
    def best(self) -> BestModel:
        """The best checkpoint over the trials, as tested once on the test split."""
        return self.architecture.best

    @property
    def title(self) -> str:
        """'scnn on nmnist (synthetic data)'; a study not named the default way keeps its name in the title, so titles differ."""
        archs = [architecture.arch for architecture in self.summary.architectures]
        extra = "" if self.path.name == default_name(self.dataset, archs, self.synthetic) else f" [{self.path.name}]"
        return model_on_data(self.arch, self.dataset, self.synthetic) + extra

    def repeat_histories(self) -> list[pd.DataFrame]:
        """The repeats' per-epoch histories (progress.csv of each repeat trial), in repeat order."""
        return [read_history(self.path / REPEATS / Path(record.predictions).parent.parent.name) for record in self.architecture.repeats]

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @cached_property
    def best_trial(self) -> Trial:
        return next(trial for trial in self.trials if trial.trial_id == self.best.trial_id)

    @property
    def scored_trials(self) -> list[Trial]:
        """Trials that reported METRIC at least once (every one the search can learn from)."""
        return [trial for trial in self.trials if trial.score is not None]


def find_experiment(spec: str | Path, results_dir: Path = RESULTS_DIR) -> Path:
    """An experiment folder from a path or from a name under `results_dir`; UserError when neither."""
    path = Path(spec) if Path(spec).exists() else results_dir / str(spec)
    if not path.exists():
        known = sorted(study_file.parent.name for study_file in results_dir.glob(f"*/{STUDY_FILE}"))
        listing = f"Experiments there: {', '.join(known)}." if known else "There is no experiment there."
        raise UserError(f"No experiment {str(spec)!r}: it is neither a folder nor a name under {results_dir.resolve()}. {listing}")
    if not path.is_dir():
        raise UserError(f"{path} is a file, not an experiment folder (give the folder that holds {STUDY_FILE}).")
    if not (path / STUDY_FILE).is_file():
        raise UserError(f"{path} is not an experiment folder: it has no {STUDY_FILE} (python -m study.run writes one when a study starts).")
    return path


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise UserError(f"{path} cannot be read ({error}).") from None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(_read_text(path))
    except ValueError as error:
        raise UserError(f"{path} cannot be read ({error}).") from None


def _study_settings(path: Path) -> RecordedSettings:
    """study.json's settings, checked to hold what the analysis reads of them."""
    settings = RecordedSettings.of(_read_json(path))
    if settings is None or settings.data_dir is None:
        raise UserError(
            f"{path} is not a study record this snn-study can read: it has no \"settings\" with a \"data_dir\" "
            f"(python -m study.run writes one when a study starts)."
        )
    return settings


def read_history(trial_dir: Path) -> pd.DataFrame:
    """A trial's progress.csv, one row per epoch; empty when it reported nothing."""
    try:
        frame = pd.read_csv(trial_dir / "progress.csv")
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame(columns=["epoch"])
    frame = frame[[column for column in HISTORY_COLUMNS if column in frame]]
    # A trial restored after a crash may report an epoch twice; its last report stands.
    return frame.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)


def last_checkpoint(trial_dir: Path) -> Path | None:
    saved = sorted(trial_dir.glob(f"checkpoint_*/{TRIAL_CHECKPOINT_FILE}"))
    return saved[-1] if saved else None


def _locate_best(path: Path, best: BestModel) -> Path:
    """The exported best.pth; where it was moved away, the best trial's checkpoint inside the experiment."""
    exported = Path(best.checkpoint)
    if exported.is_file():
        return exported
    trial_checkpoint = Path(best.trial_checkpoint)
    inside = path / trial_checkpoint.parent.name / trial_checkpoint.name / TRIAL_CHECKPOINT_FILE
    if inside.is_file():
        return inside
    raise UserError(f"The best model of {path.name} is gone: neither {exported} nor {inside} exists.")


def _check_belongs(checkpoint: Path, dataset: str, arch: str, name: str) -> None:
    """A best checkpoint of another dataset or architecture would make every model figure wrong."""
    payload = read_checkpoint(checkpoint)
    if (payload["dataset"], payload["arch"]) != (dataset, arch):
        raise UserError(
            f"{checkpoint} holds a {payload['arch']} for {payload['dataset']}, but the experiment {name} studied "
            f"a {arch} for {dataset}: it is not this experiment's model."
        )


def load_experiment(spec: str | Path, arch: str | None = None, results_dir: Path = RESULTS_DIR) -> ArchitectureResult:
    """One architecture (`arch`, else the study's first) of a finished experiment; UserError when it is not one."""
    experiments = load_experiments(spec, results_dir)
    if arch is None:
        return experiments[0]
    return lookup({experiment.arch: experiment for experiment in experiments}, arch, "architecture of this experiment")


def load_experiments(spec: str | Path, results_dir: Path = RESULTS_DIR) -> list[ArchitectureResult]:
    """Every architecture of a finished experiment (a folder, or a name under `results_dir`) that has a
    best model; UserError when it is not a finished experiment."""
    path = find_experiment(spec, results_dir).resolve()
    settings = _study_settings(path / STUDY_FILE)
    if not (path / SUMMARY_FILE).is_file():
        raise UserError(
            f"The experiment {path.name} at {path} has no finished trial to analyse: there is no {SUMMARY_FILE} "
            f"(a study writes it when it ends; an interrupted one continues with python -m study.run --resume)."
        )
    summary = read_summary(_read_text(path / SUMMARY_FILE), str(path / SUMMARY_FILE))
    finished = [architecture for architecture in summary.architectures if architecture.best is not None]
    if not finished or not any(trial.epochs for trial in summary.trials):
        raise UserError(
            f"The experiment {path.name} at {path} has no finished trial: none of its {plural(len(summary.trials), 'trial')} finished an epoch."
        )
    experiments = []
    for architecture in finished:
        best = _locate_best(path, architecture.best)
        _check_belongs(best, summary.dataset, architecture.arch, path.name)
        name = path.name if len(summary.architectures) == 1 else f"{path.name}-{architecture.arch}"
        experiments.append(ArchitectureResult(name, path, settings, summary, architecture, _trials(path, architecture), best))
    return experiments


def _trials(path: Path, architecture: Architecture) -> tuple[Trial, ...]:
    return tuple(
        Trial(
            trial_id=row.trial_id,
            config=row.config,
            status=row.status,
            epochs=row.epochs,
            last=row.last,
            history=read_history(path / Path(row.path).name),
            checkpoint=last_checkpoint(path / Path(row.path).name),
        )
        for row in architecture.trials
    )


def trial_table(experiment: ArchitectureResult) -> pd.DataFrame:
    """One row per trial, best first: id, status, epochs, score and the hyperparameters it tried."""
    rows = [
        {"trial_id": t.trial_id, "status": t.status, "epochs": t.epochs, f"best {METRIC}": t.score, **t.config}
        for t in experiment.trials
    ]
    return pd.DataFrame(rows).sort_values(f"best {METRIC}", ascending=MODE != "max", na_position="last").reset_index(drop=True)
