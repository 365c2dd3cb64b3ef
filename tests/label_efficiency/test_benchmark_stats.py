"""The report's statistics: p-values of the paired t, Holm's correction, and the converged fine-tuning budget."""

from __future__ import annotations

import math

import pytest

from monai_cover.label_efficiency.stats import converged_step, curve_value, holm, mean_curve, paired_difference


def test_paired_p_value_is_the_paired_t_test_of_the_interval():
    from scipy.stats import ttest_rel

    a, b = [0.82, 0.85, 0.80, 0.84], [0.80, 0.81, 0.79, 0.80]  # t = 3.67 on 3 df
    d = paired_difference(a, b)
    assert d["p"] == pytest.approx(ttest_rel(a, b).pvalue)
    # p < 0.05 exactly when the 95% interval excludes 0 (the same t)
    assert (d["p"] < 0.05) is d["excludes_zero"] is True
    wide = paired_difference([0.82, 0.85, 0.80], [0.80, 0.81, 0.79])
    assert wide["p"] > 0.05 and not wide["excludes_zero"]
    assert math.isnan(paired_difference([0.9], [0.8])["p"])
    assert paired_difference([0.9, 0.9], [0.8, 0.8])["p"] == 0.0  # identical non-zero differences
    assert paired_difference([0.8, 0.9], [0.8, 0.9])["p"] == 1.0


def test_holm_on_a_known_example():
    # sorted 0.005, 0.01, 0.03, 0.04 against 0.05/4, 0.05/3, 0.05/2, 0.05/1: the first two pass, 0.03 > 0.025 stops
    assert holm([0.01, 0.04, 0.03, 0.005]) == [True, False, False, True]
    # 0.04 alone would pass 0.05 / 1, but Holm stops at the first failure (Bonferroni-Holm is step-down)
    assert holm([0.04, 0.02]) == [True, True] and holm([0.04, 0.026]) == [False, False]
    # single pairs have no test: kept, and not counted in the family
    assert holm([math.nan, 0.02, 0.04]) == [False, True, True]
    assert holm([]) == []


def test_curve_value_interpolates_and_mean_curve_needs_shared_steps():
    curve = [[10, 0.2], [20, 0.6]]
    assert curve_value(curve, 15) == pytest.approx(0.4)
    assert curve_value(curve, 5) == 0.2 and curve_value(curve, 30) == 0.6  # held flat outside the measured steps
    assert mean_curve([[[10, 0.2], [20, 0.6]], [[10, 0.4], [20, 0.8]]]) == [[10.0, pytest.approx(0.3)],
                                                                             [20.0, pytest.approx(0.7)]]
    with pytest.raises(ValueError, match="same steps"):
        mean_curve([[[10, 0.2]], [[12, 0.2]]])


def test_converged_step_is_where_the_curve_stops_rising_for_good():
    # rises 0.5 -> 0.8 by step 40, then +0.3 points per 10 steps
    curve = [[10, 0.5], [20, 0.7], [30, 0.78], [40, 0.8], [50, 0.803], [60, 0.806], [70, 0.809], [80, 0.812]]
    # 40: value(40) - value(30) = 2 points; 50: 0.803 - value(37.5) = 0.803 - 0.795, then 0.45, 0.525, 0.6 points
    assert converged_step(curve) == 50
    assert converged_step(curve, rise=0.025) == 40
    assert converged_step(curve, rise=0.005) is None  # the tail still gains 0.6 points per quarter
    # a plateau that climbs again later is not convergence: only the flat tail counts
    plateau = [[10, 0.5], [20, 0.5], [30, 0.5], [40, 0.8], [50, 0.8], [60, 0.8], [70, 0.8], [80, 0.8]]
    assert converged_step(plateau) == 60  # 50: value(50) - value(37.5) = 0.8 - 0.725
    # still rising at the end: not converged within the budget
    assert converged_step([[10, 0.2], [20, 0.4], [30, 0.6], [40, 0.8]]) is None
