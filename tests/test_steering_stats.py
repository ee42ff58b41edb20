"""Statistics of steering tables: planted slopes recovered (statsmodels / scipy as independent
checks), null slopes covered, model contrasts, human alignment, figure, bad input."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from experiments.steering import (
    compare_slopes,
    dose_response,
    human_alignment,
    plot_dose_response,
    summarise_steering,
)
from experiments.steering.analysis import _ols_slope_from, _suff_stats, item_means

ALPHAS = [-2.0, -1.0, 0.0, 1.0, 2.0]


def planted(
    slope: float,
    *,
    model="teacher",
    direction="length",
    n_items=40,
    samples=3,
    acc_slope=0.0,
    seed=0,
    noise=0.3,
) -> pd.DataFrame:
    """log(1 + tokens) = item effect + slope * alpha + noise; P(correct) = 0.7 + acc_slope * alpha."""
    rng = np.random.default_rng(seed)
    effect = rng.normal(5.0, 0.5, n_items)
    rows = []
    for i in range(n_items):
        for a in ALPHAS:
            for s in range(samples):
                cost = effect[i] + slope * a + rng.normal(0, noise)
                rows.append(
                    dict(
                        model=model,
                        direction=direction,
                        alpha=a,
                        item_id=f"it{i:03d}",
                        task="t",
                        sample=s,
                        reasoning_tokens=int(round(np.expm1(cost))),
                        finished_thinking=True,
                        correct=bool(rng.random() < 0.7 + acc_slope * a),
                    )
                )
    return pd.DataFrame(rows)


def test_planted_slope_is_recovered_and_matches_statsmodels():
    table = pd.concat([planted(0.3, acc_slope=-0.1), planted(0.0, direction="random0", seed=1)])
    summary = summarise_steering(table, n_boot=1000).set_index("direction")
    length, null = summary.loc["length"], summary.loc["random0"]
    assert length["slope_lo"] < 0.3 < length["slope_hi"] and length["slope_lo"] > 0.2
    assert length["p"] < 1e-6
    assert null["slope_lo"] < 0 < null["slope_hi"]
    assert length["acc_lo"] < -0.1 < length["acc_hi"] and length["acc_hi"] < 0
    assert length["n"] == 40
    # independent point estimate: statsmodels OLS of item-mean log(1 + tokens) on alpha
    t = table[table["direction"] == "length"]
    means = (
        t.assign(y=np.log1p(t["reasoning_tokens"]))
        .groupby(["item_id", "alpha"])["y"]
        .mean()
        .reset_index()
    )
    fit = sm.OLS(means["y"], sm.add_constant(means["alpha"])).fit()
    assert length["slope"] == pytest.approx(fit.params["alpha"], rel=1e-10)


def test_cluster_p_agrees_with_a_t_test_of_per_item_slopes():
    """Balanced design: the cluster-robust t of the pooled slope is the one-sample t of per-item
    slopes up to statsmodels' small-sample factor (N-1)/(N-K)."""
    table = planted(0.02, n_items=15, samples=1, noise=0.5, seed=4)
    p = summarise_steering(table, n_boot=200)["p"].iloc[0]
    means = item_means(table)
    per_item = means.groupby("item_id").apply(lambda f: np.polyfit(f["alpha"], f["cost"], 1)[0])
    t = stats.ttest_1samp(per_item, 0.0)
    n_rows = len(means)
    t_cluster = t.statistic / np.sqrt((n_rows - 1) / (n_rows - 2))
    assert p == pytest.approx(2 * stats.t.sf(abs(t_cluster), df=len(per_item) - 1), rel=1e-6)


def test_bootstrap_closed_form_is_ols_on_the_resampled_rows():
    means = item_means(planted(0.2, n_items=12, samples=2))
    order = pd.Index(means["item_id"].unique())
    counts = np.random.default_rng(2).multinomial(12, np.full(12, 1 / 12))
    slope = _ols_slope_from(counts @ _suff_stats(means, "cost", order))
    rows = means.set_index("item_id").loc[np.repeat(order, counts)]
    fit = sm.OLS(rows["cost"].to_numpy(), sm.add_constant(rows["alpha"].to_numpy())).fit()
    assert slope == pytest.approx(fit.params[1], rel=1e-10)


def test_dose_response_means_and_bands():
    table = planted(0.3, n_items=20)
    dose = dose_response(table, n_boot=500)
    assert list(dose["alpha"]) == ALPHAS
    expected = (
        table.assign(y=np.log1p(table["reasoning_tokens"]))
        .groupby(["alpha", "item_id"])["y"]
        .mean()
        .groupby("alpha")
        .mean()
    )
    np.testing.assert_allclose(dose["mean_log_tokens"], expected.loc[ALPHAS], rtol=1e-12)
    assert (dose["lo"] < dose["mean_log_tokens"]).all() and (
        dose["mean_log_tokens"] < dose["hi"]
    ).all()
    assert np.all(np.diff(dose["mean_log_tokens"]) > 0.1)  # planted 0.3 per alpha step
    assert (dose["n"] == 20).all() and (dose["finished"] == 1).all()


def test_teacher_student_contrast_of_slopes():
    table = pd.concat([planted(0.3, model="teacher"), planted(0.0, model="student", seed=7)])
    cmp = compare_slopes(table, "teacher", "student", n_boot=1000).iloc[0]
    assert cmp["direction"] == "length" and cmp["n"] == 40
    assert cmp["diff_lo"] < 0.3 < cmp["diff_hi"] and cmp["diff_lo"] > 0.15 and cmp["p"] < 0.01
    summary = summarise_steering(table, n_boot=100).set_index("model")
    assert cmp["diff"] == pytest.approx(
        summary.loc["teacher", "slope"] - summary.loc["student", "slope"]
    )
    same = compare_slopes(
        table.assign(model="teacher").pipe(lambda t: pd.concat([t, t.assign(model="copy")])),
        "teacher",
        "copy",
        n_boot=200,
    ).iloc[0]
    assert same["diff"] == 0 and same["diff_lo"] == 0 == same["diff_hi"]
    with pytest.raises(ValueError, match="not in the steering table"):
        compare_slopes(table, "teacher", "nobody")


def test_contrast_p_is_the_standard_two_sided_bootstrap_p():
    """Every resampled difference above 0: p = 2 (1 + 0) / (n_boot + 1), the smallest p the
    bootstrap can give; identical models: p = 1."""
    table = pd.concat(
        [
            planted(0.5, model="teacher", noise=0.05),
            planted(0.0, model="student", seed=7, noise=0.05),
        ]
    )
    assert compare_slopes(table, "teacher", "student", n_boot=199).iloc[0]["p"] == pytest.approx(
        2 / 200
    )
    same = pd.concat([table.assign(model="a"), table.assign(model="b")])
    assert compare_slopes(same, "a", "b", n_boot=199).iloc[0]["p"] == 1.0


def test_summary_reports_the_largest_share_of_budget_cut_traces():
    table = planted(0.3, n_items=20, samples=2)
    cut = (table["alpha"] == 2.0) & (table["item_id"] < "it005")  # 5 of 20 items at alpha 2
    cut |= (table["alpha"] == 1.0) & (table["item_id"] == "it000") & (table["sample"] == 0)
    row = summarise_steering(table.assign(finished_thinking=~cut), n_boot=50).iloc[0]
    assert row["censored_max"] == pytest.approx(5 / 20) and row["censored_alpha"] == 2.0
    dose = dose_response(table.assign(finished_thinking=~cut), n_boot=50).set_index("alpha")
    assert 1 - dose.loc[1.0, "finished"] == pytest.approx(1 / 40)


def test_report_flags_directions_with_many_budget_cut_traces(tmp_path):
    from experiments.pipeline.layout import RunLayout
    from experiments.pipeline.report.steering import steering_section as _steering_section
    from experiments.steering.outputs import write_steering_outputs

    table = pd.concat(
        [
            planted(0.3, n_items=20, samples=1),
            planted(0.0, direction="random0", n_items=20, samples=1),
        ]
    )
    cut = (table["direction"] == "length") & (table["alpha"] == 2.0) & (table["item_id"] < "it004")
    write_steering_outputs(table.assign(finished_thinking=~cut), tmp_path / "steering", n_boot=50)
    lines = _steering_section(RunLayout(tmp_path))[0]
    flagged = [line for line in lines if "raise max_new_tokens" in line]
    assert len(flagged) == 1  # not the uncensored random direction
    assert flagged[0].startswith(
        "- **teacher**, `length` direction: 20% of its traces at α = 2 were cut"
    )
    assert "| 20% (α = 2) |" in "\n".join(lines)


def test_human_alignment_tracks_the_steered_cost():
    rng = np.random.default_rng(3)
    n = 30
    log_rt = rng.normal(1.0, 0.5, n)
    items = pd.DataFrame({"item_id": [f"it{i}" for i in range(n)], "human_rt_s": np.exp(log_rt)})
    rows = []
    for a in (0.0, 1.0):  # aligned at alpha 0, scrambled by steering at alpha 1
        cost = 4 + (log_rt if a == 0 else rng.permutation(log_rt)) + rng.normal(0, 0.1, n)
        rows += [
            dict(
                model="m",
                direction="length",
                alpha=a,
                item_id=f"it{i}",
                task="t",
                sample=0,
                reasoning_tokens=int(np.expm1(c) * 100) // 100,
                finished_thinking=True,
                correct=True,
            )
            for i, c in enumerate(cost)
        ]
    table = pd.DataFrame(rows)
    out = human_alignment(table, items).set_index("alpha")
    for a in (0.0, 1.0):
        t = table[table["alpha"] == a]
        r = stats.pearsonr(np.log1p(t["reasoning_tokens"]), log_rt).statistic
        assert out.loc[a, "r"] == pytest.approx(r, rel=1e-10)
    assert out.loc[0.0, "r"] > 0.9 and out.loc[1.0, "r_change"] < -0.5
    assert out.loc[1.0, "p_vs_0"] < 0.001 and np.isnan(out.loc[0.0, "p_vs_0"])
    with pytest.raises(ValueError, match="human_rt_s"):
        human_alignment(table, items.drop(columns="human_rt_s"))


def test_figure_and_bad_tables(tmp_path):
    table = pd.concat([planted(0.3, n_items=8), planted(0.0, direction="random0", n_items=8)])
    png, svg = plot_dose_response(dose_response(table, n_boot=100), tmp_path)
    assert png.stat().st_size > 1000 and svg.read_text().startswith("<?xml")
    with pytest.raises(ValueError, match="lacks column"):
        summarise_steering(table.drop(columns="alpha"))
    with pytest.raises(ValueError, match="single alpha"):
        summarise_steering(table[table["alpha"] == 1.0])
    with pytest.raises(ValueError, match="none of the items"):
        summarise_steering(table, pd.DataFrame({"item_id": ["zzz"]}))


def test_identical_generations_give_a_zero_slope_with_p_one():
    """Common random numbers: a direction that changes nothing reproduces the alpha = 0 traces."""
    base = planted(0.0, n_items=10, samples=1, noise=0.0)
    same = base.assign(
        reasoning_tokens=base.groupby("item_id")["reasoning_tokens"].transform("first")
    )
    row = summarise_steering(same, n_boot=200).iloc[0]
    assert row[["slope", "slope_lo", "slope_hi"]].abs().max() < 1e-12 and row["p"] == 1.0
