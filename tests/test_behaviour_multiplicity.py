"""Primary endpoint, Holm's correction over the behaviour family, the r-bar test and the
cross-task flag (finding 11 of issue 14), and the report's reading of them."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from experiments.behaviour import analyse, write_behaviour_outputs
from experiments.behaviour.multiplicity import family_size, holm
from experiments.behaviour.synthetic import planted_tables

ROLES = {"teacher": "teacher", "student": "student", "baseline": "baseline"}


def test_holm_by_hand_and_nan_left_out():
    # sorted .01, .03, .04 -> 3 x .01 = .03, max(.03, 2 x .03) = .06, max(.06, .04) = .06
    np.testing.assert_allclose(
        holm(np.array([0.01, 0.04, 0.03, np.nan])), [0.03, 0.06, 0.06, np.nan]
    )
    p = np.random.default_rng(0).random(12)
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1])


@pytest.fixture(scope="module")
def res():
    items, traces = planted_tables(n_tasks=3, n_items=80, n_samples=2, tau=0.2, seed=9)
    return analyse(items, traces, roles=ROLES, n_boot=200, seed=1)


def test_primary_endpoint_and_family(res):
    cm, tr = res["comparisons"], res["transfer"]
    primary = cm[cm.endpoint == "primary"]
    assert list(zip(primary.model_a, primary.model_b, primary.task)) == [
        ("teacher", "student", "__mean__")
    ]
    family = np.concatenate([cm.p_boot, tr.p_acc])
    family = family[np.isfinite(family)]
    assert (
        family_size(cm, tr) == len(family) == 3 * 5 + 4
    )  # 3 pairs x (3 tasks, pooled, r-bar) + transfer
    expected = multipletests(family, method="holm")[1]
    np.testing.assert_allclose(
        np.sort(
            np.concatenate([cm.p_holm, tr.p_holm])[
                np.isfinite(np.concatenate([cm.p_holm, tr.p_holm]))
            ]
        ),
        np.sort(expected),
    )
    assert (cm.p_holm >= cm.p_boot).all()
    sb = cm[(cm.model_a == "student") & (cm.model_b == "baseline")].set_index("task")
    np.testing.assert_allclose(tr.set_index("task").p_r_holm, sb.loc[tr.task, "p_holm"])


def test_single_task_pairs_count_once():
    items, traces = planted_tables(n_tasks=1, n_items=60, n_samples=2, tau=0.2, seed=2)
    res = analyse(items, traces, roles=ROLES, n_boot=200)
    cm, tr = res["comparisons"], res["transfer"]
    assert family_size(cm, tr) == 3 + 1  # one test per pair and one accuracy test
    for _, g in cm.groupby(["model_a", "model_b"]):
        assert g.p_holm.nunique() == 1 and g.p_boot.nunique() == 1  # pooled/r-bar = the task row
    assert tr.p_holm.nunique() == 1


def test_rbar_is_tested_and_cross_task_flagged_below_five_tasks(res):
    al = res["alignment"]
    mean = al[(al.model == "teacher") & (al.level == "mean")].iloc[0]
    assert mean["boot_lo"] < mean["r"] < mean["boot_hi"] and mean["p_boot"] < 0.01  # r .6
    cross = al[(al.model == "teacher") & (al.level == "cross")].iloc[0]
    assert "k = 3 tasks" in cross["reason"] and "unreliable" in cross["reason"]
    items, traces = planted_tables(n_tasks=5, n_items=12, seed=3)
    cross = analyse(items, traces, n_boot=0)["alignment"].query("level == 'cross'").iloc[0]
    assert "unreliable" not in cross["reason"]


def test_report_names_the_primary_endpoint_and_reads_reliability(tmp_path):
    from experiments.pipeline.layout import RunLayout
    from experiments.pipeline.report.behaviour import behaviour_section

    # same policy for student and teacher (a 2x copy), the student sampling much more noisily
    items, traces = planted_tables(n_tasks=2, n_items=150, n_samples=4, tau=0.05, sigma=0.0, seed=4)
    noisy = traces["model"] == "student"
    rng = np.random.default_rng(0)
    traces.loc[noisy, "reasoning_tokens"] = np.round(
        traces.loc[noisy, "reasoning_tokens"] * np.exp(rng.normal(0, 0.9, noisy.sum()))
    ).astype(int)
    res = analyse(items, traces, roles=ROLES, n_boot=200)
    write_behaviour_outputs(res, tmp_path / "behaviour", figures=False)
    lines, summary = behaviour_section(RunLayout(tmp_path))
    text = "\n".join(lines)
    primary = res["comparisons"].query("endpoint == 'primary'").iloc[0]
    assert primary["diff_lo"] > 0  # the raw r-bar difference "finds" the teacher better aligned
    assert primary["diff_disattenuated_lo"] <= 0 <= primary["diff_disattenuated_hi"]
    assert "**Primary endpoint**" in text and f"Holm p = {primary['p_holm']:.4f}" in text
    assert "could be a difference in reliability" in text
    assert summary["primary_endpoint"]["teacher - student"]["diff"] == pytest.approx(
        primary["diff"], abs=1e-4
    )
    assert "k = 2 tasks" in text
