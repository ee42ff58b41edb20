"""The report's seeds section: the across-pairs test against scipy / statsmodels and hand-worked
sign-flip p's; the per-triple table and spread on a planted alignment table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from experiments.pipeline.report.seeds import across_pairs, holm, seeds_summary


@pytest.mark.parametrize("seed", range(5))
def test_across_pairs_equals_scipys_one_sample_t_test(seed):
    d = np.random.default_rng(seed).normal(0.1, 0.2, size=3 + seed)
    got = across_pairs(d)
    ref = stats.ttest_1samp(d, 0.0)
    ci = ref.confidence_interval(0.95)
    assert got["mean"] == pytest.approx(d.mean())
    assert got["p_t"] == pytest.approx(ref.pvalue)
    assert (got["lo"], got["hi"]) == pytest.approx((ci.low, ci.high))


def test_sign_flip_p_counts_sign_patterns_at_least_as_extreme():
    assert across_pairs([0.1, 0.2, 0.3])["p_sign"] == pytest.approx(2 / 8)  # floor at 3 pairs
    # |mean| of [0.3, 0.2, -0.1] = 0.133; patterns as extreme: (+,+,-), (+,+,+), and mirrors
    assert across_pairs([0.3, 0.2, -0.1])["p_sign"] == pytest.approx(4 / 8)
    assert across_pairs([0.5, -0.5])["p_sign"] == pytest.approx(1.0)


def test_undefined_cases_are_nan_not_errors():
    one = across_pairs([0.2])
    assert one["n"] == 1 and one["mean"] == 0.2 and math.isnan(one["p_t"])
    flat = across_pairs([0.2, 0.2, 0.2])
    assert math.isnan(flat["p_t"]) and math.isnan(flat["lo"])
    assert across_pairs([0.1, math.nan, 0.3])["n"] == 2


def test_holm_equals_statsmodels():
    p = [0.01, 0.04, 0.03, 0.2]
    assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))
    assert holm([math.nan, 0.02])[1] == pytest.approx(0.02)


def test_seeds_summary_reads_each_triples_rbar_cross_r_and_accuracy():
    rbar = {"t0": 0.7, "s0": 0.5, "b0": 0.4, "t1": 0.6, "s1": 0.45, "b1": 0.5}
    rows = []
    for model, r in rbar.items():
        rows.append(
            dict(model=model, task="__mean__", level="mean", r=r, r_lo=r - 0.1, r_hi=r + 0.1)
        )
        rows.append(dict(model=model, task="__all__", level="cross", r=r / 2, r_lo=0, r_hi=1))
        rows.append(dict(model=model, task="x", level="within", r=0.0, r_lo=0, r_hi=0))
    traces = pd.DataFrame(
        {"model": [m for m in rbar for _ in range(4)], "correct": [1, 1, 0, 0] * len(rbar)}
    )
    triples = [{"teacher": f"t{i}", "student": f"s{i}", "baseline": f"b{i}"} for i in (0, 1)]
    got = seeds_summary(triples, pd.DataFrame(rows), traces)
    table = pd.DataFrame(got["triples"])
    assert list(table["teacher_r"]) == [0.7, 0.6] and list(table["baseline_cross"]) == [0.2, 0.25]
    assert (table["student_acc"] == 0.5).all()
    spread = got["spread"]["teacher_r"]
    assert spread["mean"] == pytest.approx(0.65) and spread["sd"] == pytest.approx(
        np.std([0.7, 0.6], ddof=1)
    )
    primary = got["tests"]["teacher-student"]
    assert primary["endpoint"] == "primary" and primary["mean"] == pytest.approx((0.2 + 0.15) / 2)
    assert primary["p_t"] == pytest.approx(stats.ttest_1samp([0.2, 0.15], 0).pvalue)
    assert got["tests"]["student-baseline"]["mean"] == pytest.approx((0.1 - 0.05) / 2)
