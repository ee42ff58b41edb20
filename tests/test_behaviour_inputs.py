"""Bad input, model pairing, output files and the `handan behaviour` command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from experiments.behaviour import analyse, load_pairs, triples_from_roles, write_behaviour_outputs
from experiments.behaviour.synthetic import planted_tables
from experiments.cli.behaviour import register

ROLES = {"teacher": "teacher", "student": "student", "baseline": "baseline"}
ISSUE_COLUMNS = {
    "alignment": [
        "model",
        "task",
        "level",
        "n",
        "r",
        "r_lo",
        "r_hi",
        "rho",
        "p",
        "p_boot",
        "reliability_model",
        "reliability_human",
        "r_disattenuated",
        "r_disattenuated_lo",
        "r_disattenuated_hi",
        "reason",
    ],
    "comparisons": [
        "model_a",
        "model_b",
        "task",
        "r_a",
        "r_b",
        "diff",
        "diff_lo",
        "diff_hi",
        "p_boot",
        "p_holm",
        "z_steiger",
        "p_steiger",
        "reliability_a",
        "reliability_b",
        "diff_disattenuated",
        "diff_disattenuated_lo",
        "diff_disattenuated_hi",
        "p_disattenuated",
    ],
    "transfer": [
        "student",
        "baseline",
        "task",
        "acc_student",
        "acc_baseline",
        "acc_diff",
        "acc_diff_lo",
        "acc_diff_hi",
        "p_acc",
        "p_holm",
        "r_student",
        "r_baseline",
        "p_r",
    ],
    "inflation": [
        "student",
        "reference",
        "task",
        "slope",
        "slope_lo",
        "slope_hi",
        "ratio_gmean",
        "logratio_vs_difficulty_slope",
        "p_constant",
        "p_equivalent",
        "tau_logratio",
        "p_ratio_equal",
        "p_equivalent_tasks",
    ],
}


@pytest.fixture(scope="module")
def tables():
    return planted_tables(n_tasks=3, n_items=12, n_samples=2, tau=0.1, seed=5)


def test_items_without_rt_and_unknown_traces_are_excluded_and_counted(tables):
    items, traces = tables
    items = items.copy()
    items.loc[items.index[:4], "human_rt_s"] = np.nan  # 4 items of task0 lose their RT
    extra = traces[traces["item_id"] == "i00030"].assign(item_id="ghost", task="task2")
    res = analyse(items, pd.concat([traces, extra], ignore_index=True), n_boot=0)
    ex = res["exclusions"]
    row = ex[ex["stage"] == "items"].iloc[0]
    assert (row["task"], row["n_items"]) == ("task0", 4)
    no_rt = ex[ex["reason"] == "item has no human RT"]
    assert set(no_rt["model"]) == set(ROLES) and (no_rt["n_traces"] == 8).all()
    ghost = ex[ex["reason"] == "item_id not in the items table"]
    assert (ghost["n_traces"] == 2).all() and (ghost["n_items"] == 1).all() and len(ghost) == 3
    within = res["alignment"].query("level == 'within' and task == 'task0'")
    assert (within["n"] == 8).all()


def test_small_task_and_constant_costs_give_nan_with_reason(tables):
    items, traces = tables
    keep = items["task"].ne("task1") | items["item_id"].isin(items["item_id"][12:14])
    items = items[keep]
    traces = traces[traces["item_id"].isin(items["item_id"])].copy()
    const = (traces["model"] == "baseline") & (traces["task"] == "task2")
    traces.loc[const, "reasoning_tokens"] = 500
    al = analyse(items, traces, n_boot=50)["alignment"].set_index(["model", "task"])
    small = al.loc[("teacher", "task1")]
    assert np.isnan(small["r"]) and "only 2 items" in small["reason"]
    flat = al.loc[("baseline", "task2")]
    assert np.isnan(flat["r"]) and "identical" in flat["reason"]
    assert al.loc[("teacher", "task0"), "reason"] == ""
    assert al.loc[("teacher", "__all__"), "n"] == 3


def test_no_overlapping_items(tables):
    items, traces = tables
    student = traces["model"] == "student"
    traces = traces[~student | traces["task"].eq("task0")]
    traces = traces[~traces["model"].eq("baseline") | traces["task"].ne("task0")]
    res = analyse(items, traces, roles=ROLES, n_boot=0)
    cmp_row = res["comparisons"].query("model_a == 'student' and model_b == 'baseline'")
    assert len(cmp_row) == 1 and cmp_row.iloc[0]["reason"] == "no overlapping items"
    assert res["exclusions"]["reason"].str.contains("share no items").any()
    assert res["transfer"].iloc[0]["reason"] == "no overlapping items"


def test_censored_samples_kept_and_counted():
    items, traces = planted_tables(n_tasks=1, n_items=30, budget=450, seed=2)
    res = analyse(items, traces, n_boot=0)
    n_cut = int((~traces["finished_thinking"]).groupby(traces["model"]).sum()["teacher"])
    assert n_cut > 0
    row = res["alignment"].query("model == 'teacher' and level == 'within'").iloc[0]
    assert row["n_censored"] == n_cut and row["n"] == 30
    costs = res["costs"].query("model == 'teacher'")
    assert costs["cost"].max() == pytest.approx(np.log1p(450))


def test_task_mismatch_and_unknown_models_raise(tables):
    items, traces = tables
    bad = traces.copy()
    bad.loc[0, "task"] = "task9"
    with pytest.raises(ValueError, match="different from their item's task"):
        analyse(items, bad, n_boot=0)
    with pytest.raises(ValueError, match=r"\['nobody'\].*fix the names"):
        analyse(
            items,
            traces,
            triples=[{"teacher": "teacher", "student": "nobody", "baseline": "baseline"}],
            n_boot=0,
        )


def test_triples_from_roles():
    assert triples_from_roles(ROLES) == [ROLES]
    roles = {"T": "teacher", "s1": "student", "s2": "student", "b1": "baseline", "b2": "baseline"}
    with pytest.raises(ValueError, match="PAIRS.yaml"):
        triples_from_roles(roles)
    fams = {"s1": "qwen", "b1": "qwen", "s2": "llama", "b2": "llama", "T": "r1"}
    assert triples_from_roles(roles, fams) == [
        {"teacher": "T", "student": "s1", "baseline": "b1"},
        {"teacher": "T", "student": "s2", "baseline": "b2"},
    ]
    with pytest.raises(ValueError, match="unknown role"):
        triples_from_roles({"x": "teach"})
    assert triples_from_roles({"T": "teacher", "S": "student"}) == [
        {"teacher": "T", "student": "S"}
    ]


def test_a_triple_without_baseline_gives_teacher_student_rows_only(tables):
    items, traces = tables
    traces = traces[traces["model"] != "baseline"]
    res = analyse(items, traces, roles={"teacher": "teacher", "student": "student"}, n_boot=0)
    assert set(zip(res["comparisons"]["model_a"], res["comparisons"]["model_b"])) == {
        ("teacher", "student")
    }
    assert res["transfer"].empty
    assert set(zip(res["inflation"]["student"], res["inflation"]["reference"])) == {
        ("student", "teacher")
    }
    assert set(res["effort"]["role"]) == {"teacher", "student"}
    with pytest.raises(
        ValueError, match="`pairs:` in a run config"
    ):  # ambiguous roles name the fix
        analyse(items, traces, roles={"teacher": "teacher", "student": "teacher"}, n_boot=0)


def test_load_pairs(tmp_path):
    good = tmp_path / "PAIRS.yaml"
    good.write_text("triples:\n  - {teacher: a, student: b, baseline: c}\n")
    assert load_pairs(good) == [{"teacher": "a", "student": "b", "baseline": "c"}]
    no_baseline = tmp_path / "pair.yaml"
    no_baseline.write_text("triples:\n  - {teacher: a, student: b}\n")
    assert load_pairs(no_baseline) == [{"teacher": "a", "student": "b"}]
    bad = tmp_path / "bad.yaml"
    bad.write_text("triples:\n  - {teacher: a, baseline: c}\n")
    with pytest.raises(ValueError, match="teacher and student"):
        load_pairs(bad)
    with pytest.raises(FileNotFoundError):
        load_pairs(tmp_path / "missing.yaml")


def test_write_outputs_and_columns(tables, tmp_path):
    items, traces = tables
    traces = traces[traces["task"] != "task2"]  # 2 tasks: fewer panels to draw, faster
    res = analyse(items, traces, roles=ROLES, n_boot=50)
    paths = write_behaviour_outputs(res, tmp_path)
    names = {p.name for p in paths}
    for stem in ("cost_vs_human", "alignment_by_role", "inflation"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
        assert (tmp_path / "figures" / f"{stem}.png").stat().st_size > 1000
    for key, cols in ISSUE_COLUMNS.items():
        frame = pd.read_csv(tmp_path / f"{key}.csv")
        assert cols == [c for c in frame.columns if c in cols]
    al = pd.read_csv(tmp_path / "alignment.csv", keep_default_na=False)
    assert set(al["level"]) == {"within", "cross", "mean"}
    assert (al.loc[al["level"] == "cross", "task"] == "__all__").all()
    assert al.groupby("model")["level"].apply(lambda s: (s == "mean").sum()).eq(1).all()


def test_report_flags_inflation_rows_with_many_budget_cut_samples(tables, tmp_path):
    from experiments.pipeline.layout import RunLayout
    from experiments.pipeline.report.behaviour import behaviour_section as _behaviour_section

    items, traces = tables
    cut = (traces["model"] == "student") & (
        traces["item_id"].rank(method="dense") % 4 == 0
    )  # ~25% of items
    res = analyse(items, traces.assign(finished_thinking=~cut), roles=ROLES, n_boot=0)
    write_behaviour_outputs(res, tmp_path / "behaviour", figures=False)
    flagged = [
        line
        for line in _behaviour_section(RunLayout(tmp_path))[0]
        if "raise max_new_tokens" in line
    ]
    share = (
        res["inflation"]
        .set_index(["reference", "task"])
        .loc[("teacher", "__pooled__"), "censored_student"]
    )
    assert share == pytest.approx(cut.sum() / (traces["model"] == "student").sum())
    assert (
        f"- **student vs teacher, __pooled__**: {share:.0%} of the student's and 0% "
        in "\n".join(flagged)
    )
    write_behaviour_outputs(
        analyse(items, traces, roles=ROLES, n_boot=0), tmp_path / "behaviour", figures=False
    )
    assert not [
        line
        for line in _behaviour_section(RunLayout(tmp_path))[0]
        if "raise max_new_tokens" in line
    ]


def test_cli(tables, tmp_path):
    items, traces = tables
    items.to_parquet(tmp_path / "items.parquet")
    traces.to_csv(tmp_path / "traces.csv", index=False)
    (tmp_path / "PAIRS.yaml").write_text(
        "triples:\n  - {teacher: teacher, student: student, baseline: baseline}\n"
    )
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # keep `behaviour` a named subcommand
    runner = CliRunner()
    base = [
        "behaviour",
        "--items",
        str(tmp_path / "items.parquet"),
        "--traces",
        str(tmp_path / "traces.csv"),
        "--n-boot",
        "20",
        "--no-figures",
    ]
    out = tmp_path / "out"
    result = runner.invoke(app, [*base, "--pairs", str(tmp_path / "PAIRS.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out / "transfer.csv")) == 5  # 3 tasks, pooled, r-bar
    out2 = tmp_path / "out2"
    args = [
        *base,
        "--out",
        str(out2),
        "--roles",
        "teacher=teacher",
        "--roles",
        "student=student",
        "--roles",
        "baseline=baseline",
    ]
    assert runner.invoke(app, args).exit_code == 0
    pd.testing.assert_frame_equal(
        pd.read_csv(out / "comparisons.csv"), pd.read_csv(out2 / "comparisons.csv")
    )
    bad = runner.invoke(app, [*base, "--out", str(out2), "--roles", "teacher"])
    assert bad.exit_code == 2 and "MODEL=ROLE" in bad.output
    missing = runner.invoke(
        app,
        [
            "behaviour",
            "--items",
            str(tmp_path / "nope.csv"),
            "--traces",
            str(tmp_path / "traces.csv"),
            "--out",
            str(out2),
        ],
    )
    assert missing.exit_code == 2 and "does not exist" in missing.output
