"""The behaviour section of ``report.md`` (and its part of ``summary.json``)."""

from __future__ import annotations

import pandas as pd

from experiments.pipeline.layout import RunLayout
from experiments.pipeline.report.format import CENSORED_FLAG, _ci, _excludes_zero, _f, _read, _table


def behaviour_section(run: RunLayout) -> tuple[list[str], dict]:
    al = _read(run.behaviour_file("alignment"))
    if al is None:
        return ["## Behaviour", "", "Not run.", ""], {}
    lines = [
        "## Behaviour: does reasoning cost track human cost? (`behaviour/alignment.csv`)",
        "",
        "Model cost of an item = mean over samples of log(1 + reasoning tokens); human cost = log(human RT).",
        "",
    ]
    lines += _table(
        ["model", "task", "level", "n", "r [95% CI]", "ρ", "p", "note"],
        (
            [
                r.model,
                r.task,
                r.level,
                int(r.n) if pd.notna(r.n) else "",
                _ci(r, "r", "r_lo", "r_hi"),
                _f(r.rho),
                _f(r.p, 3),
                "" if pd.isna(r.get("reason", "")) else r.get("reason", ""),
            ]
            for _, r in al.iterrows()
        ),
    )
    summary: dict = {}
    for _, r in al.iterrows():
        summary.setdefault(str(r.model), {})[f"{r.level}:{r.task}"] = (
            None if pd.isna(r.r) else round(float(r.r), 4)
        )
    for _, r in al[al.level == "within"].iterrows():
        if pd.isna(r.r):
            reason = r.get("reason", "")
            lines.append(f"- **{r.model}, {r.task}**: no correlation can be computed ({reason}).")
        elif _excludes_zero(r.r_lo, r.r_hi):
            sign = "longer" if r.r > 0 else "shorter"
            lines.append(
                f"- **{r.model}, {r.task}**: the model reasons {sign} on items people take longer "
                f"on: r = {_ci(r, 'r', 'r_lo', 'r_hi')}, n = {int(r.n)}."
            )
        else:
            lines.append(
                f"- **{r.model}, {r.task}**: no reliable relation between its reasoning length and "
                f"human solving time: r = {_ci(r, 'r', 'r_lo', 'r_hi')} (CI includes 0), n = {int(r.n)}."
            )
    lines.append("")
    cm = _read(run.behaviour_file("comparisons"))
    if cm is not None and len(cm):
        lines += [
            "### Teacher vs student vs baseline (`behaviour/comparisons.csv`)",
            "",
            "Same items, same human cost: dependent correlations (Steiger's Z; paired bootstrap CI of r_a − r_b).",
            "",
        ]
        lines += _table(
            ["model a", "model b", "task", "r a", "r b", "difference [95% CI]", "p"],
            (
                [
                    r.model_a,
                    r.model_b,
                    r.task,
                    _f(r.r_a),
                    _f(r.r_b),
                    _ci(r, "diff", "diff_lo", "diff_hi"),
                    _f(r.p, 3),
                ]
                for _, r in cm.iterrows()
            ),
        )
    tr = _read(run.behaviour_file("transfer"))
    if tr is not None and len(tr):
        lines += [
            "### Negative transfer: student vs its own baseline (`behaviour/transfer.csv`)",
            "",
        ]
        lines += _table(
            [
                "student",
                "baseline",
                "task",
                "acc student",
                "acc baseline",
                "p (McNemar)",
                "r student",
                "r baseline",
                "p (r)",
            ],
            (
                [
                    r.student,
                    r.baseline,
                    r.task,
                    _f(r.acc_student),
                    _f(r.acc_baseline),
                    _f(r.p_mcnemar, 3),
                    _f(r.r_student),
                    _f(r.r_baseline),
                    _f(r.p_r, 3),
                ]
                for _, r in tr.iterrows()
            ),
        )
    inf = _read(run.behaviour_file("inflation"))
    if inf is not None and len(inf):
        lines += ["### Linear inflation law (`behaviour/inflation.csv`)", ""]
        lines += _table(
            [
                "student",
                "reference",
                "task",
                "slope [CI]",
                "geometric-mean ratio",
                "log-ratio vs difficulty slope",
                "p (constant)",
                "cut at budget (student / reference)",
            ],
            (
                [
                    r.student,
                    r.reference,
                    r.task,
                    _ci(r, "slope", "slope_lo", "slope_hi"),
                    _f(r.ratio_gmean),
                    _f(r.logratio_vs_difficulty_slope, 3),
                    _f(r.p_constant, 3),
                    f"{r.censored_student:.0%} / {r.censored_reference:.0%}",
                ]
                for _, r in inf.iterrows()
            ),
        )
        cut = inf[inf[["censored_student", "censored_reference"]].max(axis=1) > CENSORED_FLAG]
        lines += [
            f"- **{r.student} vs {r.reference}, {r.task}**: {r.censored_student:.0%} of the student's and "
            f"{r.censored_reference:.0%} of the reference's samples were cut at the budget (counted at it): "
            "ratio biased toward 1 and slope toward 0 — raise max_new_tokens."
            for _, r in cut.iterrows()
        ]
        lines += [""] if len(cut) else []
        summary["inflation"] = {
            f"{r.student}/{r.reference}/{r.task}": None
            if pd.isna(r.ratio_gmean)
            else round(float(r.ratio_gmean), 4)
            for _, r in inf.iterrows()
        }
    return lines, summary
