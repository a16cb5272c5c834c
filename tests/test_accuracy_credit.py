"""Accuracy that credits nothing by accident: silent samples and ties go to the class the output membrane
favours (not to class 0), a network with no output spike on the test split is flagged, and the rate-coded
test pass is seeded (the same model scores the same on the same samples)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from study import loop
from study.config import Hyperparams, StudySettings
from study.data.encoding import to_model_input
from study.final_test import final_test, predict_test_split
from study.loop import input_adapter, make_loader, measure, seeded
from study.models.common import Output
from study.registry import build_model

CLASSES = 10  # MNIST's: the models below are built for it
TINY = dict(num_steps=4, blocks=1, width=0.5, kernel_size=3, batch_size=8)


def images(count: int, seed: int = 0) -> torch.Tensor:
    """`count` random MNIST-shaped images `[N, 1, 28, 28]` as the loader delivers them (bytes)."""
    return torch.randint(0, 256, (count, 1, 28, 28), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_a_silent_sample_goes_to_the_class_its_membrane_favours():
    # No output spike anywhere: every class ties at 0 spikes. The membrane favours class 7 in the first sample and
    # class 2 in the second (2 neurons per class: a class's membrane is its neurons' sum, averaged over 3 steps).
    membrane = torch.zeros(3, 2, CLASSES * 2)
    membrane[:, 0, 14] = 0.4  # class 7's first neuron
    membrane[:, 1, 4:6] = 0.3  # both of class 2's neurons (0.6 in all) ...
    membrane[:, 1, 8] = 0.5  # ... above class 4's single neuron
    silent = Output(scores=torch.zeros(2, CLASSES), membrane=membrane)
    assert silent.predictions().tolist() == [7, 2]  # argmax of the counts alone would say [0, 0]


def test_a_tie_is_broken_by_the_membrane_among_the_tied_classes_only():
    scores = torch.tensor([[0.0, 3.0, 1.0, 3.0], [2.0, 0.0, 2.0, 1.0]])  # ties: classes 1 and 3; classes 0 and 2
    membrane = torch.tensor([[[5.0, 0.2, 0.0, 0.4], [0.1, 9.0, 0.3, 0.0]]])  # [T=1, B=2, 4]
    # Sample 0: class 3 beats class 1 on the membrane; class 0's larger membrane does not count, it is not tied.
    # Sample 1: class 2 beats class 0; class 1's large membrane does not count either.
    assert Output(scores=scores, membrane=membrane).predictions().tolist() == [3, 2]
    # Without a tie the spike count decides, however the membrane leans.
    assert Output(scores=torch.tensor([[1.0, 4.0, 0.0, 0.0]]), membrane=membrane[:, :1]).predictions().tolist() == [1]


def silent_model(favoured: int) -> torch.nn.Module:
    """A spiking CNN whose outputs never reach threshold but integrate a constant current that favours `favoured`."""
    torch.manual_seed(0)
    model = build_model("mnist", "scnn", Hyperparams(**TINY)).eval()
    linear = model.classifier[-1]
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.copy_(torch.linspace(0.0, 0.05, CLASSES).roll(favoured + 1))  # the largest, 0.05, at `favoured`
    return model  # membrane at most 0.05 / (1 - beta) = 0.25 < threshold 1: silent


def test_measuring_a_silent_network_credits_the_class_its_membrane_favours_not_class_0():
    favoured = 6
    model = silent_model(favoured)
    hp = Hyperparams(**TINY)
    adapt = input_adapter("mnist", "scnn", hp)
    for label, expected_acc in ((favoured, 1.0), (0, 0.0)):
        data = TensorDataset(images(16), torch.full((16,), label))
        result = measure(model, make_loader(data, 8, shuffle=False), adapt, "cpu", keep_predictions=True)
        assert result.layer_rates["out"] == 0.0  # really silent
        assert result.predicted.tolist() == [favoured] * 16
        assert result.acc == expected_acc


def settings(arch: str = "scnn") -> StudySettings:
    return StudySettings("mnist", arch, Path("/nonexistent"), 1)  # the test set is handed over: nothing is read


@pytest.mark.parametrize("readout, bias, silent", [("spikes", 0.0, True), ("spikes", 2.0, False), ("membrane_mean", 0.0, False)])
def test_final_test_flags_a_network_without_output_spikes(readout, bias, silent):
    """The flag is "no output spike on the whole test split", for outputs that fire; a membrane readout never fires."""
    hp = Hyperparams(**TINY, readout=readout)
    torch.manual_seed(0)
    model = build_model("mnist", "scnn", hp).eval()
    with torch.no_grad():
        model.classifier[-1].weight.zero_()
        model.classifier[-1].bias.fill_(bias)  # 0: no current, no spike; 2 > threshold 1: a spike at every step
    test_set = TensorDataset(images(12), torch.arange(12) % CLASSES)
    tested, predicted, labels = predict_test_split(settings(), model, hp, "cpu", test_set)
    assert tested.output_silent is silent
    assert tested.test_samples == len(predicted) == len(labels) == 12


def rate_coded_model() -> tuple[torch.nn.Module, Hyperparams, TensorDataset]:
    hp = Hyperparams(**TINY, encoding="rate", threshold=0.3)
    torch.manual_seed(0)
    model = build_model("mnist", "scnn", hp).eval()
    return model, hp, TensorDataset(images(24, seed=1), torch.arange(24) % CLASSES)


def test_the_rate_coded_test_pass_scores_a_model_the_same_every_time(monkeypatch):
    model, hp, test_set = rate_coded_model()
    torch.manual_seed(123)
    first = final_test(settings(), model, hp, "cpu", test_set)
    torch.manual_seed(456)  # whatever state the global generator is in
    again = final_test(settings(), model, hp, "cpu", test_set)
    assert (again.test_acc, again.test_loss) == (first.test_acc, first.test_loss)
    # ...and it is the seed that makes them equal: another seed draws other spikes, so another loss.
    monkeypatch.setattr(loop, "MEASURE_SEED", loop.MEASURE_SEED + 1)
    other = final_test(settings(), model, hp, "cpu", test_set)
    assert other.test_loss != first.test_loss


def test_seeded_encoding_repeats_its_draw_and_leaves_the_training_stream_alone():
    batch = images(4)
    encode = lambda: to_model_input(batch, "static", spiking=True, num_steps=6, encoding="rate")  # noqa: E731
    with seeded(0, "cpu"):
        first = encode()
    with seeded(0, "cpu"):
        again = encode()
    with seeded(1, "cpu"):
        other = encode()
    assert torch.equal(first, again)
    assert not torch.equal(first, other) and 0 < first.mean() < 1  # random spikes, not a constant
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    with seeded(0, "cpu"):
        encode()
    assert torch.equal(torch.rand(3), expected)  # the draw inside did not move the generator outside
