"""The comparison's statistics, checked on known cases against scipy.stats and by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from study.statistics import MCNEMAR, SIGN_FLIP, compare, mcnemar, mean_interval, paired_difference, sign_flip_test


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
    assert same.test == SIGN_FLIP and same.difference.contains(0.0) and not same.distinguishable
    better = compare([0.95, 0.96, 0.95], [0.80, 0.82, 0.81], [np.ones(300, bool)] * 3, [np.arange(300) % 5 > 0] * 3)
    assert better.distinguishable and better.p_value < 1e-3 and better.discordant == (60, 0)  # samples, not samples x repeats


def test_one_repeat_is_compared_by_exact_mcnemar():
    first, second = np.arange(100) % 4 > 0, np.arange(100) % 5 > 0
    single = compare([first.mean()], [second.mean()], [first], [second])
    assert single.test == MCNEMAR and single.p_value == mcnemar(first, second)[1]
    assert single.difference.low is None  # one repeat: no interval over seeds


def test_repeats_that_all_agree_claim_no_interval():
    # Three seeds, each exactly 2 points apart on the same 50 samples: a zero-width interval would call
    # the gap certain; the one discordant sample per repeat is no evidence at all (p = 1).
    alike = mean_interval([0.9, 0.9, 0.9])
    assert alike.alike and alike.low is None and alike.high is None and alike.std == 0 and alike.n == 3
    assert not mean_interval([0.9, 0.91, 0.9]).alike
    first, second = [np.ones(50, bool)] * 3, [np.arange(50) > 0] * 3
    steady = compare([1.0] * 3, [0.98] * 3, first, second)
    assert steady.difference.alike and steady.difference.low is None
    assert steady.p_value == 1.0 and not steady.distinguishable
    # The same steady gap on many samples is distinguishable by the paired test alone.
    many = compare([1.0] * 3, [0.8] * 3, [np.ones(200, bool)] * 3, [np.arange(200) % 5 > 0] * 3)
    assert many.difference.low is None and many.p_value < 1e-3 and many.distinguishable


def test_the_sign_flip_test_treats_each_test_sample_once_however_many_repeats():
    rng = np.random.default_rng(1)
    first = rng.random(400) < 0.8
    second = first.copy()
    second[rng.choice(400, 12, replace=False)] ^= True  # a few samples flipped: a small, noisy gap
    # One repeat: the permutation test agrees with exact McNemar (the binomial test on the discordant samples).
    (only_first, only_second), p_mcnemar = mcnemar(first, second)
    assert sign_flip_test([first], [second]) == pytest.approx(p_mcnemar, abs=0.01)
    # The same outcomes repeated five times are no new evidence: p must not shrink (pooling made it ~5 times smaller).
    pooled_p = mcnemar(np.concatenate([first] * 5), np.concatenate([second] * 5))[1]
    assert sign_flip_test([first] * 5, [second] * 5) == pytest.approx(p_mcnemar, abs=0.01)
    assert pooled_p < p_mcnemar / 3
    # Reproducible: a fixed seed for the random flips.
    assert sign_flip_test([first] * 5, [second] * 5) == sign_flip_test([first] * 5, [second] * 5)
