"""The test split, used once per model: the best model of a study, a repeat's best epoch, or an exported checkpoint tested again."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from study.config import Hyperparams, StudySettings
from study.data.prepare import prepare_data
from study.loop import input_adapter, make_loader, measure, trial_test_set
from study.models.common import OUTPUT_SPIKES
from study.precision import resolve
from study.registry import build_model


@dataclass(frozen=True)
class FinalTestResult:
    test_acc: float
    test_loss: float | None  # None when not finite (JSON has no NaN)
    test_samples: int
    output_silent: bool = False  # spike-count outputs: not one output spike on the whole test split


def final_test(settings: StudySettings, model, hp: Hyperparams, device, test_set: Dataset | None = None) -> FinalTestResult:
    """`model` (trained with `hp`) measured on the test split of `settings` (or on `test_set`, that split already open)."""
    return predict_test_split(settings, model, hp, device, test_set)[0]


def predict_test_split(settings: StudySettings, model, hp: Hyperparams, device, test_set: Dataset | None = None) -> tuple[FinalTestResult, list[int], list[int]]:
    """`final_test`, with every test sample's predicted class and label (in the split's order)."""
    test_set = test_set if test_set is not None else trial_test_set(settings, hp)
    loader, adapt = make_loader(test_set, hp.batch_size, shuffle=False), input_adapter(settings.dataset, settings.arch, hp)
    result = measure(model, loader, adapt, device, resolve(settings.precision, device), keep_predictions=True)
    tested = FinalTestResult(
        result.acc, result.loss if math.isfinite(result.loss) else None, len(test_set), result.layer_rates.get(OUTPUT_SPIKES) == 0.0
    )
    if result.predicted is None:  # the loss was not finite: measuring stopped at the first such batch
        return tested, [], []
    return tested, result.predicted.tolist(), result.targets.tolist()


def checkpoint_test_split(payload: dict, data_dir: Path, test_limit: int | None) -> tuple[StudySettings, Hyperparams, Dataset]:
    """The settings, hyperparameters and (prepared) test split of the study a checkpoint came from.

    Synthetic checkpoints read, and if needed regenerate, the synthetic folder under `data_dir`.
    """
    hp = Hyperparams.from_dict(payload["hyperparams"])
    settings = StudySettings(
        dataset=payload["dataset"],
        arch=payload["arch"],
        data_dir=Path(data_dir).resolve(),
        max_epochs=1,
        synthetic=bool(payload.get("synthetic", False)),
        test_limit=test_limit,
    )
    prepare_data(settings, splits=(False,))
    return settings, hp, trial_test_set(settings, hp)


@dataclass
class BestSoFar:
    """A repeat's best epoch by validation accuracy: the model it is tested with when training ends."""

    val_acc: float = -1.0
    epoch: int = 0
    state: dict | None = None

    def update(self, metrics: dict, model) -> None:
        if metrics["val_acc"] > self.val_acc:
            self.val_acc, self.epoch = metrics["val_acc"], metrics["epoch"]
            self.state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def best_epoch_on_test_split(best: BestSoFar, settings: StudySettings, hp: Hyperparams, device) -> tuple[dict, dict]:
    """A repeat's test: its best-validation model on the test split. (metrics, predictions file contents)."""
    model = build_model(settings.dataset, settings.arch, hp).to(device)
    model.load_state_dict(best.state)
    tested, predicted, labels = predict_test_split(settings, model.eval(), hp, device)
    metrics = {**dataclasses.asdict(tested), "best_epoch": best.epoch, "best_val_acc": best.val_acc}
    return metrics, {"predicted": predicted, "labels": labels}
