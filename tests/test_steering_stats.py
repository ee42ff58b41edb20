"""Statistics of steering tables: planted slopes recovered (statsmodels / scipy as independent
checks), null slopes covered, the random-direction null and its empirical p, the primary (linear)
alphas vs the whole curve and its non-linearity test, model contrasts, the linear-range rule,
human alignment, figure, bad input."""

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
from experiments.steering.analysis import item_means
from experiments.steering.calibration import linear_rows, pick_alpha_max

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
    summary = summarise_steering(table).set_index("direction")
    length, null = summary.loc["length"], summary.loc["random0"]
    assert length["slope_lo"] < 0.3 < length["slope_hi"] and length["slope_lo"] > 0.2
    assert length["p"] < 1e-6
    assert null["slope_lo"] < 0 < null["slope_hi"]
    assert length["acc_lo"] < -0.1 < length["acc_hi"] and length["acc_hi"] < 0
    assert length["n"] == 40 and length["alpha_max"] == 2
    # independent: statsmodels OLS of item-mean log(1 + tokens) on alpha, items as clusters
    t = table[table["direction"] == "length"]
    means = (
        t.assign(y=np.log1p(t["reasoning_tokens"]))
        .groupby(["item_id", "alpha"])["y"]
        .mean()
        .reset_index()
    )
    fit = sm.OLS(means["y"], sm.add_constant(means["alpha"])).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(means["item_id"])[0]}, use_t=True
    )
    assert length["slope"] == pytest.approx(fit.params["alpha"], rel=1e-10)
    lo, hi = fit.conf_int().loc["alpha"]  # statsmodels' t CI with n_items - 1 df
    assert (length["slope_lo"], length["slope_hi"]) == pytest.approx((lo, hi), rel=1e-10)
    assert length["p"] == pytest.approx(fit.pvalues["alpha"], rel=1e-8)


def test_cluster_p_agrees_with_a_t_test_of_per_item_slopes():
    """Balanced design: the cluster-robust t of the pooled slope is the one-sample t of per-item
    slopes up to statsmodels' small-sample factor (N-1)/(N-K)."""
    table = planted(0.02, n_items=15, samples=1, noise=0.5, seed=4)
    p = summarise_steering(table)["p"].iloc[0]
    means = item_means(table)
    per_item = means.groupby("item_id").apply(lambda f: np.polyfit(f["alpha"], f["cost"], 1)[0])
    t = stats.ttest_1samp(per_item, 0.0)
    n_rows = len(means)
    t_cluster = t.statistic / np.sqrt((n_rows - 1) / (n_rows - 2))
    assert p == pytest.approx(2 * stats.t.sf(abs(t_cluster), df=len(per_item) - 1), rel=1e-6)


def test_random_null_ranks_each_direction_among_the_random_ones():
    """20 random directions with no effect: a planted slope beyond all of them has p_random =
    1/21 (the smallest possible); a direction acting like them ranks among them."""
    randoms = [planted(0.0, direction=f"random{k}", seed=10 + k, n_items=15) for k in range(20)]
    table = pd.concat(
        [
            planted(0.3, n_items=15),
            planted(0.0, direction="human_rt", seed=99, n_items=15),
            *randoms,
        ]
    )
    summary = summarise_steering(table).set_index("direction")
    null = summary.loc[[f"random{k}" for k in range(20)], "slope"].to_numpy()
    length, control = summary.loc["length"], summary.loc["human_rt"]
    assert length["n_random"] == 20 and length["p_random"] == pytest.approx(1 / 21)
    beaten = np.sum(np.abs(null) >= abs(control["slope"]))
    assert control["p_random"] == pytest.approx((1 + beaten) / 21) and control["p_random"] > 0.05
    assert (length["random_lo"], length["random_hi"]) == pytest.approx(
        tuple(np.percentile(null, [2.5, 97.5]))
    )
    assert summary.loc["random3", ["p_random", "random_lo"]].isna().all()


def test_primary_slope_uses_the_alphas_every_direction_has_and_the_curve_is_tested():
    """Random directions only at ±1: every direction's primary slope is over {-1, 0, 1}; the
    whole curve of the targeted one (an inverted U) has its own slope and a quadratic p equal to
    statsmodels' cluster-robust fit of cost ~ 1 + alpha + alpha²."""
    curve = planted(0.3).assign(
        reasoning_tokens=lambda f: np.round(
            np.expm1(np.log1p(f["reasoning_tokens"]) - 0.25 * f["alpha"] ** 2)
        ).astype(int)
    )
    random = planted(0.0, direction="random0", seed=3)
    table = pd.concat([curve, random[random["alpha"].abs() <= 1]])
    summary = summarise_steering(table).set_index("direction")
    length = summary.loc["length"]
    assert summary["alpha_max"].eq(1).all()
    means = item_means(curve)
    inner = means[means["alpha"].abs() <= 1]
    fit = sm.OLS(inner["cost"], sm.add_constant(inner["alpha"])).fit()
    assert length["slope"] == pytest.approx(fit.params["alpha"], rel=1e-10)
    full = sm.OLS(means["cost"], sm.add_constant(means["alpha"])).fit()
    assert length["slope_full"] == pytest.approx(full.params["alpha"], rel=1e-10)
    design = np.column_stack([np.ones(len(means)), means["alpha"], means["alpha"] ** 2])
    quad = sm.OLS(means["cost"].to_numpy(), design).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(means["item_id"])[0]}, use_t=True
    )
    assert length["p_quadratic"] == pytest.approx(quad.pvalues[2], rel=1e-8)
    assert length["p_quadratic"] < 1e-6 and summary.loc["random0", "p_quadratic"] > 0.001


def test_dose_response_means_and_bands():
    table = planted(0.3, n_items=20)
    dose = dose_response(table)
    assert list(dose["alpha"]) == ALPHAS
    per_item = (
        table.assign(y=np.log1p(table["reasoning_tokens"]))
        .groupby(["alpha", "item_id"])["y"]
        .mean()
    )
    expected = per_item.groupby("alpha").mean()
    np.testing.assert_allclose(dose["mean_log_tokens"], expected.loc[ALPHAS], rtol=1e-12)
    for row, alpha in zip(dose.itertuples(), ALPHAS):
        x = per_item.loc[alpha].to_numpy()
        lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
        assert (row.lo, row.hi) == pytest.approx((lo, hi), rel=1e-10)
    assert np.all(np.diff(dose["mean_log_tokens"]) > 0.1)  # planted 0.3 per alpha step
    assert (dose["n"] == 20).all() and (dose["finished"] == 1).all()


def test_teacher_student_contrast_of_slopes_is_a_paired_t_on_item_slopes():
    table = pd.concat([planted(0.3, model="teacher"), planted(0.0, model="student", seed=7)])
    cmp = compare_slopes(table, "teacher", "student").iloc[0]
    assert cmp["direction"] == "length" and cmp["n"] == 40 and cmp["alpha_max"] == 2
    assert cmp["diff_lo"] < 0.3 < cmp["diff_hi"] and cmp["diff_lo"] > 0.15 and cmp["p"] < 0.01
    summary = summarise_steering(table).set_index("model")
    assert cmp["diff"] == pytest.approx(
        summary.loc["teacher", "slope"] - summary.loc["student", "slope"]
    )
    means = item_means(table)
    slopes = {
        m: f.groupby("item_id").apply(lambda g: np.polyfit(g["alpha"], g["cost"], 1)[0])
        for m, f in means.groupby("model")
    }
    t = stats.ttest_rel(slopes["teacher"], slopes["student"])
    assert cmp["p"] == pytest.approx(t.pvalue, rel=1e-8)
    same = compare_slopes(
        table.assign(model="teacher").pipe(lambda t: pd.concat([t, t.assign(model="copy")])),
        "teacher",
        "copy",
    ).iloc[0]
    assert same["diff"] == 0 and same["diff_lo"] == 0 == same["diff_hi"] and same["p"] == 1
    with pytest.raises(ValueError, match="not in the steering table"):
        compare_slopes(table, "teacher", "nobody")


def test_contrast_is_restricted_to_both_models_linear_range():
    """The student's random directions stop at ±1, the teacher's at ±2: both are compared on
    the alphas within ±1."""
    teacher = pd.concat(
        [planted(0.3, model="teacher"), planted(0.0, model="teacher", direction="random0")]
    )
    student = planted(0.1, model="student", seed=7)
    rnd = planted(0.0, model="student", direction="random0", seed=8)
    table = pd.concat([teacher, student, rnd[rnd["alpha"].abs() <= 1]])
    cmp = compare_slopes(table, "teacher", "student").set_index("direction")
    assert list(cmp.index) == ["length"]  # not the random controls: unrelated vectors
    cmp = cmp.loc["length"]
    assert cmp["alpha_max"] == 1
    inner = item_means(table[table["alpha"].abs() <= 1])
    slope = {
        m: sm.OLS(f["cost"], sm.add_constant(f["alpha"])).fit().params["alpha"]
        for m, f in inner[inner["direction"] == "length"].groupby("model")
    }
    assert cmp["diff"] == pytest.approx(slope["teacher"] - slope["student"], rel=1e-10)


def test_linear_range_rule_picks_the_largest_alpha_within_tolerance():
    """Random directions whose effect is ±0.2 alpha³: RMS change 0.2 at |alpha| 1 and 1.6 at 2
    → alpha_max 1 at tolerance 0.5, 2 at tolerance 2; nothing within 0.1 → the smallest
    magnitude, every row marked outside."""
    frames = []
    for k, sign in enumerate([1, -1, 1, -1]):
        base = planted(0.0, direction=f"calibration{k}", noise=0.0, seed=k, n_items=10)
        cube = sign * 0.2 * base["alpha"] ** 3
        frames.append(
            base.assign(reasoning_tokens=np.expm1(np.log1p(base["reasoning_tokens"]) + cube))
        )
    table = pd.concat(frames)
    table = table[table["alpha"].isin([-2.0, -1.0, 0.0, 1.0, 2.0])]
    grid = [1.0, 2.0]
    rows = linear_rows(table, 0.5)
    assert rows.set_index("alpha")["rms_change"].to_dict() == pytest.approx(
        {-2.0: 1.6, -1.0: 0.2, 1.0: 0.2, 2.0: 1.6}
    )
    assert pick_alpha_max(rows, grid) == 1.0
    assert pick_alpha_max(linear_rows(table, 2.0), grid) == 2.0
    assert pick_alpha_max(linear_rows(table, 0.1), grid) == 1.0  # none within: the smallest
    assert not linear_rows(table, 0.1)["within"].any()


def test_summary_reports_the_largest_share_of_budget_cut_traces():
    table = planted(0.3, n_items=20, samples=2)
    cut = (table["alpha"] == 2.0) & (table["item_id"] < "it005")  # 5 of 20 items at alpha 2
    cut |= (table["alpha"] == 1.0) & (table["item_id"] == "it000") & (table["sample"] == 0)
    row = summarise_steering(table.assign(finished_thinking=~cut)).iloc[0]
    assert row["censored_max"] == pytest.approx(5 / 20) and row["censored_alpha"] == 2.0
    dose = dose_response(table.assign(finished_thinking=~cut)).set_index("alpha")
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
    write_steering_outputs(table.assign(finished_thinking=~cut), tmp_path / "steering")
    lines = _steering_section(RunLayout(tmp_path))[0]
    flagged = [line for line in lines if "raise max_new_tokens" in line]
    assert len(flagged) == 1  # not the uncensored random direction
    assert flagged[0].startswith(
        "- **teacher**, `length` direction: 20% of its traces at α = 2 never closed the think span"
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
    png, svg = plot_dose_response(dose_response(table), tmp_path)
    assert png.stat().st_size > 1000 and svg.read_text().startswith("<?xml")
    with pytest.raises(ValueError, match="lacks column"):
        summarise_steering(table.drop(columns="alpha"))
    with pytest.raises(ValueError, match="at least two alphas"):
        summarise_steering(table[table["alpha"] == 1.0])
    with pytest.raises(ValueError, match="none of the items"):
        summarise_steering(table, pd.DataFrame({"item_id": ["zzz"]}))


def test_identical_generations_give_a_zero_slope_with_p_one():
    """Common random numbers: a direction that changes nothing reproduces the alpha = 0 traces."""
    base = planted(0.0, n_items=10, samples=1, noise=0.0)
    same = base.assign(
        reasoning_tokens=base.groupby("item_id")["reasoning_tokens"].transform("first")
    )
    row = summarise_steering(same).iloc[0]
    assert row[["slope", "slope_lo", "slope_hi"]].abs().max() < 1e-12 and row["p"] == 1.0


def test_report_verdict_reads_the_cluster_p_and_the_random_null(tmp_path):
    from experiments.pipeline.layout import RunLayout
    from experiments.pipeline.report.steering import steering_section
    from experiments.steering.outputs import write_steering_outputs

    randoms = [planted(0.0, direction=f"random{k}", seed=20 + k, n_items=15) for k in range(20)]
    strong = planted(0.3, n_items=15)
    weak = planted(0.01, direction="human_rt", seed=3, n_items=15)
    write_steering_outputs(pd.concat([strong, weak, *randoms]), tmp_path / "steering")
    lines, summary = steering_section(RunLayout(tmp_path))
    text = "\n".join(lines)
    assert "larger than every one of 20 random directions of equal norm (p_random = 0.048" in text
    assert "`human_rt` direction (|α| ≤ 2): no change in reasoning length detected" in text
    assert "| teacher | random3 |" not in text  # random controls: summarised, not listed
    row = summarise_steering(pd.concat([strong, weak, *randoms])).set_index("direction")
    assert summary["teacher"]["length"]["p_random"] == pytest.approx(1 / 21)
    assert summary["teacher"]["length"]["lo"] == pytest.approx(
        row.loc["length", "slope_lo"], abs=1e-4
    )
