"""The comparison's statistics, checked on known cases against scipy.stats and by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from study.statistics import MCNEMAR, compare, mcnemar, mean_interval, paired_difference


def test_mean_interval_is_the_student_t_interval():
    values = [0.90, 0.92, 0.88, 0.91]
    interval = mean_interval(values)
    low, high = stats.t.interval(0.95, 3, loc=np.mean(values), scale=stats.sem(values))
    assert interval.mean == pytest.approx(0.9025) and interval.std == pytest.approx(np.std(values, ddof=1))
    assert (interval.low, interval.high) == pytest.approx((low, high))
    assert interval.contains(0.9) and not interval.contains(0.95) and interval.n == 4


def test_one_value_has_no_interval_and_accuracy_intervals_stay_within_0_and_1():
    single = mean_interval([0.8])
    assert single.low is None and single.std is None and not single.contains(0.8)
    wide = mean_interval([0.2, 0.99], bounds=(0.0, 1.0))
    assert wide.low == 0.0 and wide.high == 1.0


def test_paired_difference_is_scipys_paired_t_interval():
    first, second = [0.90, 0.92, 0.88], [0.85, 0.86, 0.86]
    difference = paired_difference(first, second)
    expected = stats.ttest_rel(first, second).confidence_interval(0.95)
    assert difference.mean == pytest.approx(np.mean(np.subtract(first, second)))
    assert (difference.low, difference.high) == pytest.approx((expected.low, expected.high))


def test_exact_mcnemar_counts_the_discordant_samples():
    first = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 1], bool)
    second = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1], bool)
    (only_first, only_second), p_value = mcnemar(first, second)
    assert (only_first, only_second) == (6, 1)  # the 3 samples both got right do not count
    assert p_value == pytest.approx(stats.binomtest(6, 7, 0.5).pvalue) == pytest.approx(0.125)
    assert mcnemar(first, first) == ((0, 0), 1.0)


def test_a_difference_whose_interval_holds_zero_is_indistinguishable():
    rng = np.random.default_rng(0)
    labels_correct = [rng.random(300) < 0.9 for _ in range(3)]
    same = compare([0.90, 0.89, 0.91], [0.91, 0.88, 0.90], labels_correct, [c[::-1] for c in labels_correct])
    assert same.test == MCNEMAR and same.difference.contains(0.0) and not same.distinguishable
    better = compare([0.95, 0.96, 0.95], [0.80, 0.82, 0.81], [np.ones(300, bool)] * 3, [np.arange(300) % 5 > 0] * 3)
    assert better.distinguishable and better.p_value < 1e-6 and better.discordant == (180, 0)
