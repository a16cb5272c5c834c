"""The uncertainty of a comparison, from scipy.stats: intervals over repeats and paired tests on the same test samples."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean over `n` values with its standard deviation and a Student-t confidence interval."""

    mean: float
    std: float | None  # sample standard deviation; None with one value
    low: float | None  # CONFIDENCE interval of the mean; None with one value, or when every value is the same
    high: float | None
    n: int

    @property
    def alike(self) -> bool:
        """Several values, all the same: their spread is zero, so the t-interval would claim a certainty the data lack."""
        return self.n > 1 and self.std == 0

    @property
    def half_width(self) -> float | None:
        return None if self.high is None else (self.high - self.low) / 2

    def contains(self, value: float) -> bool:
        return self.low is not None and self.low <= value <= self.high


def mean_interval(values: list[float], confidence: float = CONFIDENCE, bounds: tuple[float, float] | None = None) -> Interval:
    """Mean, sample standard deviation and the t-interval of the mean (scipy.stats.t) of `values`, clipped
    to `bounds` where given (an accuracy's interval from few repeats can reach past 0 or 1)."""
    data = np.asarray(values, dtype=float)
    if len(data) == 0:
        raise ValueError("no values")
    mean = float(data.mean())
    if len(data) == 1:
        return Interval(mean, None, None, None, 1)
    std = float(data.std(ddof=1))
    if std == 0:  # no spread measured: no interval (a zero-width one would call any difference certain)
        return Interval(mean, 0.0, None, None, len(data))
    low, high = stats.t.interval(confidence, len(data) - 1, loc=mean, scale=stats.sem(data))
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Interval(mean, std, float(low), float(high), len(data))


@dataclass(frozen=True)
class PairedTest:
    """Two architectures tested on the same samples: the difference of their accuracies and whether it could be chance."""

    difference: Interval  # first minus second, over repeats paired by seed (paired t-interval)
    test: str  # the name of the test on the per-sample outcomes
    discordant: tuple[int, int]  # test samples the first got right more often than the second (over the repeats), and fewer
    p_value: float

    @property
    def distinguishable(self) -> bool:
        """The difference's interval excludes zero (without an interval: the paired test on the samples is significant)."""
        if self.difference.low is None:
            return self.p_value < 1 - CONFIDENCE
        return not self.difference.contains(0.0)


MCNEMAR = "exact McNemar test (two-sided binomial test on the discordant test samples)"
SIGN_FLIP = (
    "paired permutation test over the test samples (each sample's correctness averaged over the repeats, "
    "first minus second, signs flipped at random: scipy.stats.permutation_test)"
)
PERMUTATIONS = 9_999


def paired_difference(first: list[float], second: list[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean of first - second, repeat by repeat, with the paired t-interval (scipy.stats.ttest_rel)."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    differences = a - b
    if len(differences) < 2 or float(differences.std(ddof=1)) == 0:
        return mean_interval(differences.tolist(), confidence)
    interval = stats.ttest_rel(a, b).confidence_interval(confidence)
    low, high = max(float(interval.low), -1.0), min(float(interval.high), 1.0)  # accuracies differ by at most 1
    return Interval(float(differences.mean()), float(differences.std(ddof=1)), low, high, len(a))


def mcnemar(first_correct: np.ndarray, second_correct: np.ndarray) -> tuple[tuple[int, int], float]:
    """Exact McNemar test of two classifiers' per-sample outcomes (booleans, the same samples in the same order)."""
    first_correct, second_correct = np.asarray(first_correct, bool), np.asarray(second_correct, bool)
    only_first = int((first_correct & ~second_correct).sum())
    only_second = int((~first_correct & second_correct).sum())
    if only_first + only_second == 0:
        return (0, 0), 1.0
    return (only_first, only_second), float(stats.binomtest(only_first, only_first + only_second, 0.5).pvalue)


def sample_differences(first_correct: list[np.ndarray], second_correct: list[np.ndarray]) -> np.ndarray:
    """Per test sample: how often the first got it right minus how often the second did, as shares of the repeats."""
    return np.mean(first_correct, axis=0, dtype=float) - np.mean(second_correct, axis=0, dtype=float)


def sign_flip_test(first_correct: list[np.ndarray], second_correct: list[np.ndarray]) -> float:
    """Two-sided p-value that two architectures get the same test samples right, from several repeats each.

    The test sample is the unit: pooling the repeats' outcomes into one McNemar test would count every
    sample once per repeat as if it were new, and so understate p. Each sample's difference, averaged
    over the repeats, is symmetric about zero under the null hypothesis; scipy flips signs (exactly where
    there are few discordant samples, else PERMUTATIONS times with a fixed seed, so p is reproducible)."""
    difference = sample_differences(first_correct, second_correct)
    difference = difference[difference != 0]  # a tie is its own sign flip: it cannot move the sum
    if len(difference) < 2:  # one discordant sample or none: every sign pattern is as extreme
        return 1.0
    result = stats.permutation_test(
        (difference,), np.sum, permutation_type="samples", n_resamples=PERMUTATIONS, random_state=0, vectorized=True, batch=2_000
    )
    return float(result.pvalue)


def compare(first_accuracies: list[float], second_accuracies: list[float], first_correct: list[np.ndarray], second_correct: list[np.ndarray]) -> PairedTest:
    """The paired comparison of two architectures' repeats (lists in repeat order, paired by seed): the
    interval over seeds, and a test on the same test samples (exact McNemar for one repeat, a paired
    permutation test for several). `discordant` counts test samples: those the first got right more often
    than the second over the repeats, and the other way round."""
    difference = paired_difference(first_accuracies, second_accuracies)
    if len(first_correct) == 1:
        discordant, p_value = mcnemar(first_correct[0], second_correct[0])
        return PairedTest(difference, MCNEMAR, discordant, p_value)
    by_sample = sample_differences(first_correct, second_correct)
    discordant = (int((by_sample > 0).sum()), int((by_sample < 0).sum()))
    return PairedTest(difference, SIGN_FLIP, discordant, sign_flip_test(first_correct, second_correct))


def accuracy_interval(accuracy: float, samples: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Clopper-Pearson interval of an accuracy measured on `samples` test samples."""
    interval = stats.binomtest(round(accuracy * samples), samples).proportion_ci(confidence)
    return interval.low, interval.high


def unpaired_accuracy_test(first: float, second: float, samples: tuple[int, int]) -> float:
    """Fisher's exact p-value for two accuracies measured once each, on `samples` test samples each (not paired)."""
    table = [[round(accuracy * n), n - round(accuracy * n)] for accuracy, n in zip((first, second), samples)]
    return float(stats.fisher_exact(table).pvalue)


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
