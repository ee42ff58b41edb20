"""Each behavioural statistic against an independent computation, and CI calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from experiments.behaviour.alignment import correlate, fisher_mean, pearson_along
from experiments.behaviour.allocation import item_effects
from experiments.behaviour.compare import steiger_z
from experiments.behaviour.costs import Exclusions, item_costs, prepare
from experiments.behaviour.effort import allocation_kl
from experiments.behaviour.inflation import inflation_row, inflation_table, ols_slope
from experiments.behaviour.resampling import bootstrap_t, difference, pearson, stratified_indices

Z975 = stats.norm.ppf(0.975)


def _trivariate(rho_jk: float, rho_jh: float, rho_kh: float, n: int, reps: int, seed: int):
    """reps draws of n rows of (j, k, h) ~ N(0, R): arrays of shape (reps, n) each."""
    cov = np.array([[1, rho_jk, rho_jh], [rho_jk, 1, rho_kh], [rho_jh, rho_kh, 1]])
    x = np.random.default_rng(seed).multivariate_normal(np.zeros(3), cov, size=(reps, n))
    return x[..., 0], x[..., 1], x[..., 2]


# --- Steiger (1980) -------------------------------------------------------------------------


def test_steiger_hand_worked_example():
    # r_jk = .5, r_jh = .3, r_kh = .4, n = 103, worked by hand from Steiger (1980) eqs. 3, 10, 14:
    # rbar = .4, rbar^2 = .16
    # psi  = .4 (1 - .32) - .5 * .16 (1 - .32 - .16) = .272 - .0416 = .2304
    # s    = .2304 / (1 - .16)^2 = .2304 / .7056 = .326531
    # Z    = (atanh .5 - atanh .3) sqrt(100) / sqrt(2 - 2 * .326531)
    #      = (.549306 - .309520) * 10 / sqrt(1.346939) = 2.39786 / 1.160577 = 2.06610
    # p    = 2 (1 - Phi(2.0661)) = .0388
    # (Not checked against numbers printed in a paper: none were at hand offline.)
    z, p = steiger_z(0.5, 0.3, 0.4, 103)
    assert z == pytest.approx(2.06610, abs=2e-4)
    assert p == pytest.approx(0.0388, abs=2e-4)
    z_swapped, _ = steiger_z(0.3, 0.5, 0.4, 103)
    assert z_swapped == pytest.approx(-z)


def _pearson_filon_cov(r: np.ndarray, a: int, b: int, c: int, d: int) -> float:
    """Asymptotic n * cov(r_ab, r_cd) of two correlations (Pearson & Filon 1898; Steiger 1980
    eq. 3), general four-index form, written independently of compare.steiger_z."""
    return (
        0.5 * r[a, b] * r[c, d] * (r[a, c] ** 2 + r[a, d] ** 2 + r[b, c] ** 2 + r[b, d] ** 2)
        + r[a, c] * r[b, d]
        + r[a, d] * r[b, c]
        - r[a, b] * r[a, c] * r[a, d]
        - r[b, a] * r[b, c] * r[b, d]
        - r[c, a] * r[c, b] * r[c, d]
        - r[d, a] * r[d, b] * r[d, c]
    )


@pytest.mark.parametrize(
    "r_jk,r_jh,r_kh,n",
    [(0.6, 0.2, 0.5, 40), (-0.1, 0.4, 0.8, 200), (0.7, 0.65, 0.9, 30), (0.3, 0.0, -0.2, 80)],
)
def test_steiger_matches_general_pearson_filon_form(r_jk, r_jh, r_kh, n):
    rbar = (r_jk + r_jh) / 2
    j, k, h = 0, 1, 2
    # correlation matrix with both compared correlations set to the pooled rbar (Steiger's Z1*)
    rmat = np.array([[1, rbar, rbar], [rbar, 1, r_kh], [rbar, r_kh, 1]])
    psi = _pearson_filon_cov(rmat, j, k, j, h)
    var_jk = _pearson_filon_cov(rmat, j, k, j, k)
    assert var_jk == pytest.approx((1 - rbar**2) ** 2)  # sanity of the general form
    s = psi / var_jk
    expected = (np.arctanh(r_jk) - np.arctanh(r_jh)) * np.sqrt(n - 3) / np.sqrt(2 - 2 * s)
    z, p = steiger_z(r_jk, r_jh, r_kh, n)
    assert z == pytest.approx(expected, rel=1e-10)
    assert p == pytest.approx(2 * stats.norm.sf(abs(expected)))


def test_steiger_is_calibrated_under_h0():
    # H0 true: corr(j,k) = corr(j,h) = .4, the two model costs correlate .6; 3000 samples of 50
    j, k, h = _trivariate(0.4, 0.4, 0.6, n=50, reps=3000, seed=1)
    _, p = steiger_z(pearson_along(j, k), pearson_along(j, h), pearson_along(k, h), 50)
    assert 0.035 < np.mean(p < 0.05) < 0.065
    assert stats.kstest(p, "uniform").pvalue > 0.001
    # and it has power when H0 is false (.6 vs .3)
    j, k, h = _trivariate(0.6, 0.3, 0.6, n=50, reps=500, seed=2)
    _, p = steiger_z(pearson_along(j, k), pearson_along(j, h), pearson_along(k, h), 50)
    assert np.mean(p < 0.05) > 0.6


def test_paired_bootstrap_t_covers_true_difference():
    # true r(a, human) - r(b, human) = .6 - .3; 150 repeated draws of 60 items
    human, a, b = _trivariate(0.6, 0.3, 0.4, n=60, reps=150, seed=3)
    rng = np.random.default_rng(0)
    one, cols = [np.ones(60, bool)], np.arange(60)
    hits = []
    for i in range(150):
        stat = difference(pearson(a[i], human[i], one), pearson(b[i], human[i], one))
        res = bootstrap_t(stat, cols, stratified_indices(np.zeros(60), 300, rng), one)
        hits.append(res["lo"] <= 0.3 <= res["hi"])
    assert 0.88 <= np.mean(hits) <= 0.99


# --- within-task alignment ------------------------------------------------------------------


def test_correlate_matches_scipy_and_hand_fisher_ci():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(30)
    y = 0.5 * x + rng.standard_normal(30)
    row = correlate(x, y, n_boot=400, rng=rng)
    ref = stats.pearsonr(x, y)
    assert row["r"] == pytest.approx(ref.statistic)
    assert row["p"] == pytest.approx(ref.pvalue)
    assert row["rho"] == pytest.approx(stats.spearmanr(x, y).statistic)
    z, se = np.arctanh(row["r"]), 1 / np.sqrt(30 - 3)
    assert row["r_lo"] == pytest.approx(np.tanh(z - Z975 * se))
    assert row["r_hi"] == pytest.approx(np.tanh(z + Z975 * se))
    assert row["boot_lo"] < row["r"] < row["boot_hi"]
    assert row["n"] == 30 and row["reason"] == ""


def test_an_undefined_bca_interval_says_so_and_keeps_r():
    with pytest.warns(stats.DegenerateDataWarning):
        row = correlate(
            np.array([1.0, 2, 3, 5]),
            np.array([2.0, 1, 4, 3]),
            n_boot=200,
            rng=np.random.default_rng(0),
        )
    assert row["r"] == pytest.approx(stats.pearsonr([1, 2, 3, 5], [2, 1, 4, 3]).statistic)
    assert np.isnan(row["boot_lo"]) and "BCa bootstrap CI is undefined" in row["reason"]


def test_pearson_along_matches_numpy():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((2, 5, 20))
    expected = [np.corrcoef(x[i], y[i])[0, 1] for i in range(5)]
    np.testing.assert_allclose(pearson_along(x, y), expected)


def test_fisher_z_ci_coverage_on_repeated_draws():
    # 1000 draws of 40 items with true r = .5: the Fisher-z 95% CI should cover ~95%
    _, x, y = _trivariate(0.0, 0.0, 0.5, n=40, reps=1000, seed=4)
    rng = np.random.default_rng(0)
    rows = [correlate(x[i], y[i], n_boot=0, rng=rng) for i in range(1000)]
    cover = np.mean([r["r_lo"] <= 0.5 <= r["r_hi"] for r in rows])
    assert 0.93 <= cover <= 0.97


def test_bootstrap_ci_coverage_on_repeated_draws():
    _, x, y = _trivariate(0.0, 0.0, 0.5, n=50, reps=120, seed=5)
    rng = np.random.default_rng(0)
    rows = [correlate(x[i], y[i], n_boot=300, rng=rng) for i in range(120)]
    cover = np.mean([r["boot_lo"] <= 0.5 <= r["boot_hi"] for r in rows])
    assert 0.88 <= cover <= 0.99


def test_fisher_mean_by_hand():
    r, n = np.array([0.6, 0.2, 0.4]), np.array([23, 53, 103])
    row = fisher_mean(r, n)
    zbar = (np.arctanh(0.6) + np.arctanh(0.2) + np.arctanh(0.4)) / 3
    se = np.sqrt(1 / 20 + 1 / 50 + 1 / 100) / 3
    assert row["r"] == pytest.approx(np.tanh(zbar))
    assert row["r_lo"] == pytest.approx(np.tanh(zbar - Z975 * se))
    assert row["r_hi"] == pytest.approx(np.tanh(zbar + Z975 * se))
    assert row["p"] == pytest.approx(2 * stats.norm.sf(zbar / se))
    assert row["n"] == 3


# --- costs ----------------------------------------------------------------------------------


def _tables(tokens: dict[str, list[int]], *, finished=None, correct=None):
    items = pd.DataFrame(
        {
            "item_id": list(tokens),
            "task": "t",
            "prompt": "p",
            "answer": "1",
            "human_rt_s": [2.0 + i for i in range(len(tokens))],
            "human_rt_sd": 1.0,
            "human_accuracy": 1.0,
            "n_human": 10,
        }
    )
    rows = []
    for item, toks in tokens.items():
        for s, tok in enumerate(toks):
            rows.append(
                {
                    "model": "m",
                    "item_id": item,
                    "task": "t",
                    "sample": s,
                    "prompt_tokens": 3,
                    "reasoning_tokens": tok,
                    "answer_tokens": 1,
                    "finished_thinking": True if finished is None else finished[item][s],
                    "response": "",
                    "correct": True if correct is None else correct[item][s],
                    "text": "",
                }
            )
    return items, pd.DataFrame(rows)


def test_item_costs_by_hand():
    items, traces = _tables(
        {"a": [0, 9, 99], "b": [4]},
        finished={"a": [True, True, False], "b": [True]},
        correct={"a": [True, False, False], "b": [True]},
    )
    items, traces = prepare(items, traces, Exclusions())
    costs = item_costs(items, traces).set_index("item_id")
    assert costs.loc["a", "cost"] == pytest.approx((np.log(1) + np.log(10) + np.log(100)) / 3)
    assert costs.loc["a", "mean_tokens"] == pytest.approx(36.0)
    assert costs.loc["a", "n_censored"] == 1 and costs.loc["b", "n_censored"] == 0
    assert costs.loc["a", "accuracy"] == pytest.approx(1 / 3)
    assert not costs.loc["a", "majority_correct"] and costs.loc["b", "majority_correct"]
    assert costs.loc["b", "human_cost"] == pytest.approx(np.log(3.0))


def test_item_effects_by_hand():
    items, traces = _tables(
        {"a": [9, 99, 999], "b": [0, 9], "c": [9, 9], "d": [99, 9, 999]},
        correct={
            "a": [True, False, False],
            "b": [True, False],
            "c": [True, True],
            "d": [False, True, True],
        },
    )
    items, traces = prepare(items, traces, Exclusions())
    out = item_effects(traces)
    row = out[out["task"] == "t"].iloc[0]
    d = np.array(
        [
            (np.log(100) + np.log(1000)) / 2 - np.log(10),
            np.log(10) - np.log(1),
            np.log(100) - (np.log(10) + np.log(1000)) / 2,
        ]
    )
    assert row["n_items"] == 4 and row["n_mixed"] == 3  # "c" has no wrong sample
    assert row["diff"] == pytest.approx(d.mean())
    ci = stats.t.interval(0.95, 2, loc=d.mean(), scale=stats.sem(d))
    assert (row["diff_lo"], row["diff_hi"]) == pytest.approx(ci)


def test_item_effects_leave_budget_cut_samples_out():
    # each item: two correct samples near 200 tokens, two cut at the 4096 budget (graded wrong)
    cut = {k: [199, 201, 4096, 4096] for k in "abcde"}
    flags = {k: [True, True, False, False] for k in "abcde"}
    items, traces = _tables(cut, finished=flags, correct=flags)
    row = item_effects(prepare(items, traces, Exclusions())[1]).iloc[0]
    assert (row["n_items"], row["n_mixed"], row["n_censored"]) == (5, 0, 10)
    assert np.isnan(row["diff"]) and "10 censored sample(s) left out" in row["reason"]

    # with finished wrong samples too: only they enter the contrast
    cut |= {"f": [9, 99, 4096], "g": [99, 9, 999]}
    finished = flags | {"f": [True, True, False], "g": [True, True, True]}
    correct = flags | {"f": [True, False, False], "g": [True, False, False]}
    items, traces = _tables(cut, finished=finished, correct=correct)
    row = item_effects(prepare(items, traces, Exclusions())[1]).iloc[0]
    d = np.array([np.log(100) - np.log(10), (np.log(10) + np.log(1000)) / 2 - np.log(100)])
    assert (row["n_items"], row["n_mixed"], row["n_censored"]) == (7, 2, 11)
    assert row["diff"] == pytest.approx(d.mean()) and row["reason"] == ""
    assert (row["diff_lo"], row["diff_hi"]) == pytest.approx(
        stats.t.interval(0.95, 1, loc=d.mean(), scale=stats.sem(d))
    )


# --- transfer, inflation, effort ------------------------------------------------------------


def test_ols_and_ratio_match_scipy():
    rng = np.random.default_rng(2)
    x = rng.uniform(100, 1000, 40)
    y = 2.0 * x * np.exp(rng.normal(0, 0.2, 40))
    human = rng.standard_normal(40)
    _, slope, lo, hi, _ = ols_slope(x, y)
    ref = stats.linregress(x, y)
    half = stats.t.ppf(0.975, 38) * ref.stderr
    assert slope == pytest.approx(ref.slope)
    assert (lo, hi) == pytest.approx((ref.slope - half, ref.slope + half))
    # HC3 sandwich by hand: (X'X)^-1 X' diag(e_i^2 / (1 - h_ii)^2) X (X'X)^-1
    design = np.column_stack([np.ones_like(x), x])
    bread = np.linalg.inv(design.T @ design)
    resid = y - design @ (bread @ design.T @ y)
    lev = np.einsum("ij,jk,ik->i", design, bread, design)
    meat = design.T @ (design * (resid**2 / (1 - lev) ** 2)[:, None])
    se_hc3 = np.sqrt((bread @ meat @ bread)[1, 1])
    _, _, rlo, rhi, _ = ols_slope(x, y, robust=True)
    assert (rlo, rhi) == pytest.approx((ref.slope - Z975 * se_hc3, ref.slope + Z975 * se_hc3))
    frame = pd.DataFrame(
        {
            "mean_tokens_a": y,
            "mean_tokens_b": x,
            "human_cost": human,
            "task": "t",
            "n_samples_a": 1,
            "n_samples_b": 1,
            "n_censored_a": 0,
            "n_censored_b": 0,
        }
    )
    row = inflation_row(frame)
    assert (row["slope_lo"], row["slope_hi"]) == pytest.approx((rlo, rhi))
    assert row["ratio_gmean"] == pytest.approx(stats.gmean(y / x))
    lr = stats.linregress(human, np.log(y / x))
    assert row["logratio_vs_difficulty_slope"] == pytest.approx(lr.slope)
    assert row["p_constant"] == pytest.approx(lr.pvalue)


def test_pooled_constant_multiplier_test_is_within_task():
    """Two tasks, each with a constant multiplier (2 and 3) but different difficulty: the pooled
    test must not read the task difference as a difficulty-dependent multiplier."""
    rng = np.random.default_rng(1)
    rows = []
    for task, ratio, rt0 in (("fast", 2.0, 0.5), ("slow", 3.0, 3.0)):
        for i in range(40):
            t, h = rng.uniform(100, 500), rt0 + rng.normal(0, 0.3)
            s = ratio * t * np.exp(rng.normal(0, 0.05))
            rows += [
                dict(model="T", item_id=f"{task}{i}", task=task, mean_tokens=t, human_cost=h),
                dict(model="S", item_id=f"{task}{i}", task=task, mean_tokens=s, human_cost=h),
            ]
    costs = pd.DataFrame(rows).assign(
        cost=0.0, accuracy=1.0, majority_correct=True, n_samples=1, n_censored=0
    )
    table = inflation_table(costs, [("S", "T")]).set_index("task")
    assert table.loc["__pooled__", "p_constant"] > 0.05
    # independent: statsmodels formula with task fixed effects
    wide = costs.pivot(index="item_id", columns="model", values="mean_tokens")
    frame = costs[costs.model == "T"].set_index("item_id").assign(lr=np.log(wide["S"] / wide["T"]))
    fit = smf.ols("lr ~ C(task) + human_cost", data=frame).fit()
    pooled = table.loc["__pooled__"]
    assert pooled["logratio_vs_difficulty_slope"] == pytest.approx(fit.params["human_cost"])
    assert pooled["p_constant"] == pytest.approx(fit.pvalues["human_cost"])
    one = frame[frame.task == "fast"]
    assert table.loc["fast", "p_constant"] == pytest.approx(
        stats.linregress(one.human_cost, one.lr).pvalue
    )


def test_inflation_reports_the_share_of_budget_cut_samples():
    rng = np.random.default_rng(0)
    n, budget = 60, 1000
    teacher = rng.uniform(100, 600, n)
    student = np.minimum(2.44 * teacher, budget)  # true law 2.44x, cut at the budget
    rows = [
        dict(
            model=m,
            item_id=f"i{i}",
            task="t",
            sample=0,
            reasoning_tokens=int(v[i]),
            finished_thinking=bool(v[i] < budget),
            correct=True,
        )
        for m, v in (("T", teacher), ("S", student))
        for i in range(n)
    ]
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n)],
            "task": "t",
            "prompt": "p",
            "answer": "1",
            "human_rt_s": np.exp(rng.normal(1, 0.5, n)),
        }
    )
    row = inflation_table(item_costs(items, pd.DataFrame(rows)), [("S", "T")]).iloc[0]
    assert row["censored_student"] == pytest.approx(np.mean(2.44 * teacher >= budget))
    assert row["censored_student"] > 0.1 and row["censored_reference"] == 0
    assert row["ratio_gmean"] < 2.44  # what the flag warns about: the cut pulls the ratio toward 1


def test_allocation_kl_by_hand():
    t, s = np.array([9.0, 19.0, 69.0]), np.array([29.0, 29.0, 39.0])
    p, q = np.array([10, 20, 70]) / 100, np.array([30, 30, 40]) / 100
    assert allocation_kl(t, s) == pytest.approx(np.sum(p * np.log(p / q)))
    assert allocation_kl(t, 3 * (t + 1) - 1) == pytest.approx(0.0, abs=1e-12)  # scale-free
