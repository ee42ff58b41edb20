"""Planted synthetic tables (experiments.behaviour.synthetic): known parameters recovered."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from experiments.behaviour import analyse
from experiments.behaviour.synthetic import planted_tables

ROLES = {"teacher": "teacher", "student": "student", "baseline": "baseline"}


def _student_r(r_t: float, d: float, sigma: float) -> float:
    """Population r(L_S, h) for L_S = L_T + log m + d h + sigma e (synthetic.py's model)."""
    cov = 0.5 * r_t + d
    return cov / np.sqrt(cov**2 + 0.25 * (1 - r_t**2) + sigma**2)


def _pooled(frame, **match):
    sel = np.logical_and.reduce([frame[k] == v for k, v in match.items()])
    return frame[sel & (frame["task"] == "__pooled__")].iloc[0]


@pytest.fixture(scope="module")
def constant():
    """Constant 2.44x multiplier, teacher r = .6, baseline r = .3, 2 tasks x 300 items."""
    items, traces = planted_tables(
        n_tasks=2,
        n_items=300,
        r_teacher=0.6,
        r_baseline=0.3,
        multiplier=2.44,
        multiplier_slope=0.0,
        sigma=0.1,
        seed=0,
    )
    return analyse(items, traces, roles=ROLES, n_boot=300, seed=0)


def test_within_task_r_recovered(constant):
    al = constant["alignment"]
    truth = {"teacher": 0.6, "baseline": 0.3, "student": _student_r(0.6, 0.0, 0.1)}
    within = al[al["level"] == "within"]
    assert len(within) == 6
    for _, row in within.iterrows():
        assert row["r_lo"] <= truth[row["model"]] <= row["r_hi"], row.to_dict()
        assert row["boot_lo"] <= truth[row["model"]] <= row["boot_hi"], row.to_dict()
    for model, true_r in truth.items():
        mean = al[(al["model"] == model) & (al["level"] == "mean")].iloc[0]
        assert mean["r_lo"] <= true_r <= mean["r_hi"]
        assert mean["n"] == 2
        rs = within.loc[within["model"] == model, "r"]
        assert mean["r"] == pytest.approx(np.tanh(np.arctanh(rs).mean()))


def test_cross_task_alignment_uses_task_means():
    items, traces = planted_tables(n_tasks=5, n_items=20, seed=3)
    res = analyse(items, traces, n_boot=0)
    cross = res["alignment"].query("model == 'teacher' and level == 'cross'").iloc[0]
    costs = res["costs"].query("model == 'teacher'").groupby("task")[["cost", "human_cost"]].mean()
    assert cross["task"] == "__all__" and cross["n"] == 5
    assert cross["r"] == pytest.approx(stats.pearsonr(costs["cost"], costs["human_cost"]).statistic)


def test_constant_multiplier_recovered(constant):
    row = _pooled(constant["inflation"], student="student", reference="teacher")
    assert row["ratio_lo"] <= 2.44 <= row["ratio_hi"]
    # E[y | x] = m x E[exp(sigma e)] = m exp(sigma^2 / 2) x
    assert row["slope_lo"] <= 2.44 * np.exp(0.1**2 / 2) <= row["slope_hi"]
    assert row["lr_slope_lo"] <= 0 <= row["lr_slope_hi"]
    assert row["p_constant"] > 0.05


def test_difficulty_dependent_multiplier_detected():
    items, traces = planted_tables(
        n_tasks=2, n_items=300, multiplier=2.0, multiplier_slope=0.3, sigma=0.1, seed=12
    )
    per_task = analyse(items, traces, roles=ROLES, n_boot=0)["inflation"]
    row = _pooled(per_task, student="student", reference="teacher")
    # log ratio = log 2 + 0.3 h + noise and human cost = mu_task + 0.5 h: slope on human cost
    # is 0.3 / 0.5 = 0.6 within a task; pooled over tasks mu_task adds spread, so check per task
    for _, r in per_task[
        (per_task["reference"] == "teacher") & (per_task["task"] != "__pooled__")
    ].iterrows():
        assert r["lr_slope_lo"] <= 0.6 <= r["lr_slope_hi"]
        assert r["p_constant"] < 1e-6
    assert row["p_constant"] < 1e-6


def test_negative_transfer_detected():
    # student: teacher's length pattern scaled, minus difficulty sensitivity, plus noise ->
    # r_student ~ .12 < baseline .6; and a weaker student on accuracy
    items, traces = planted_tables(
        n_tasks=2,
        n_items=250,
        r_teacher=0.7,
        r_baseline=0.6,
        multiplier_slope=-0.25,
        sigma=0.4,
        acc_logit={"teacher": 1.5, "student": -0.5, "baseline": 1.0},
        seed=13,
    )
    res = analyse(items, traces, roles=ROLES, n_boot=300)
    cmp_row = _pooled(res["comparisons"], model_a="student", model_b="baseline")
    true_diff = _student_r(0.7, -0.25, 0.4) - 0.6
    assert cmp_row["diff_hi"] < 0 and cmp_row["p_boot"] < 0.01 and cmp_row["p_steiger"] < 0.001
    assert cmp_row["diff_lo"] <= true_diff <= cmp_row["diff_hi"]
    tr = _pooled(res["transfer"], student="student", baseline="baseline")
    assert tr["acc_student"] < tr["acc_baseline"] and tr["p_acc"] < 0.01  # floor 1 / 301
    assert tr["acc_diff"] == pytest.approx(tr["acc_student"] - tr["acc_baseline"])
    assert tr["acc_diff_hi"] < 0
    assert tr["p_r"] == pytest.approx(cmp_row["p_boot"])
    assert tr["r_student"] == pytest.approx(cmp_row["r_a"])


def test_within_item_allocation_recovered():
    items, traces = planted_tables(
        n_tasks=2, n_items=150, n_samples=6, tau=0.2, wrong_extra=0.3, seed=14
    )
    eff = analyse(items, traces, n_boot=0)["item_effects"]
    for _, row in eff[eff["task"] == "__pooled__"].iterrows():
        assert row["diff_lo"] <= 0.3 <= row["diff_hi"], row.to_dict()


@pytest.mark.parametrize("wrong_extra", [0.0, 0.3])
def test_within_item_allocation_not_made_by_the_budget(wrong_extra):
    """Budget cuts graded wrong (as the pipeline grades them) must not create an effect."""
    items, traces = planted_tables(
        n_tasks=2, n_items=150, n_samples=6, tau=0.2, wrong_extra=wrong_extra, budget=1100, seed=14
    )
    cut = ~traces["finished_thinking"]
    traces.loc[cut, "correct"] = False
    eff = analyse(items, traces, n_boot=0)["item_effects"]
    for _, row in eff[eff["task"] == "__pooled__"].iterrows():
        assert row["n_censored"] == cut[traces["model"] == row["model"]].sum() > 0
        if wrong_extra:  # recovered; leaving the longest wrong samples out errs toward 0
            assert 0 < row["diff_lo"] <= wrong_extra and row["p"] < 1e-6, row.to_dict()
        else:
            assert row["diff_lo"] <= 0 <= row["diff_hi"], row.to_dict()


def test_effort_and_fingerprints(constant):
    eff = constant["effort"]
    student = _pooled(eff, model="student")
    teacher = _pooled(eff, model="teacher")
    baseline = _pooled(eff, model="baseline")
    assert teacher["mean_rel_effort"] == pytest.approx(1.0) and teacher["kl_from_teacher"] == 0
    assert student["mean_rel_effort"] == pytest.approx(2.44, rel=0.05)
    # the student copies the teacher's allocation (constant multiplier), the baseline does not
    assert student["kl_from_teacher"] < 0.1 * baseline["kl_from_teacher"]
    fp = constant["fingerprints"].pivot(index="model_a", columns="model_b", values="r")
    np.testing.assert_allclose(np.diag(fp.to_numpy()), 1.0)
    np.testing.assert_allclose(fp.to_numpy(), fp.to_numpy().T)
    costs = constant["costs"]
    t = costs[costs["model"] == "teacher"].sort_values("item_id")
    z_model = t.groupby("task")["cost"].transform(lambda v: stats.zscore(v))
    z_human = t.groupby("task")["human_cost"].transform(lambda v: stats.zscore(v))
    assert fp.loc["teacher", "human"] == pytest.approx(np.corrcoef(z_model, z_human)[0, 1])
