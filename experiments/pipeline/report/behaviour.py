"""The behaviour section of ``report.md`` (and its part of ``summary.json``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.pipeline.layout import RunLayout
from experiments.pipeline.report.format import CENSORED_FLAG, _ci, _excludes_zero, _f, _read, _table

ALPHA = 0.05


def _note(x) -> str:
    return "" if pd.isna(x) else str(x)


def _reliability_reading(r: pd.Series) -> str:
    """Whether a raw difference in r could be a difference in sampling reliability."""
    if pd.isna(r.diff_disattenuated):
        return (
            "model reliability unknown (needs >= 2 samples per item): a difference in raw r may "
            "be a difference in sampling noise"
        )
    raw = _excludes_zero(r.diff_lo, r.diff_hi)
    dis = _excludes_zero(r.diff_disattenuated_lo, r.diff_disattenuated_hi)
    if raw and not dis:
        return (
            "corrected for each model's sampling reliability the difference is "
            f"{_ci(r, 'diff_disattenuated', 'diff_disattenuated_lo', 'diff_disattenuated_hi')} "
            "(CI includes 0): the raw difference could be a difference in reliability, not in "
            "policy"
        )
    if raw:
        return (
            "it survives correction for sampling reliability: "
            f"{_ci(r, 'diff_disattenuated', 'diff_disattenuated_lo', 'diff_disattenuated_hi')}"
        )
    return (
        "corrected for sampling reliability: "
        f"{_ci(r, 'diff_disattenuated', 'diff_disattenuated_lo', 'diff_disattenuated_hi')}"
    )


def _primary(cm: pd.DataFrame, family: int) -> tuple[list[str], dict]:
    lines, summary = [], {}
    for _, r in cm[cm.endpoint == "primary"].iterrows():
        key = f"{r.model_a} - {r.model_b}"
        summary[key] = {
            k: None if pd.isna(r[k]) else round(float(r[k]), 4)
            for k in ("r_a", "r_b", "diff", "diff_lo", "diff_hi", "p_boot", "p_holm")
        }
        if pd.isna(r["diff"]):
            lines.append(f"- **{key}**: undefined ({_note(r.reason)}).")
            continue
        verdict = (
            "not tested (no bootstrap resamples)"
            if pd.isna(r.p_holm)
            else "the teacher's reasoning length tracks human cost more closely than the student's"
            if r.p_holm < ALPHA and r["diff"] > 0
            else "the student's tracks it more closely"
            if r.p_holm < ALPHA
            else "no reliable difference after Holm's correction"
        )
        lines.append(
            f"- **{key}**: r̄ {_f(r.r_a)} vs {_f(r.r_b)}, difference "
            f"{_ci(r, 'diff', 'diff_lo', 'diff_hi')}, p_boot = {_f(r.p_boot, 4)}, Holm p = "
            f"{_f(r.p_holm, 4)} (family of {family} tests): {verdict}; "
            f"{_reliability_reading(r)}."
        )
    if not lines:
        return [], summary
    head = [
        "**Primary endpoint**: the teacher − student r̄ difference (`comparisons.csv`, task "
        "`__mean__`; r̄ = tanh of the mean over tasks of atanh r on the shared items), tested "
        "by a studentised bootstrap over items stratified by task; Holm's correction runs over "
        "every `p_boot` of comparisons.csv and `p_acc` of transfer.csv.",
        "",
    ]
    return head + lines + [""], summary


def _alignment(al: pd.DataFrame) -> list[str]:
    lines = _table(
        [
            "model",
            "task",
            "level",
            "n",
            "r [95% CI]",
            "ρ",
            "p",
            "reliability (model)",
            "r disattenuated [95% CI]",
            "note",
        ],
        (
            [
                r.model,
                r.task,
                r.level,
                int(r.n) if pd.notna(r.n) else "",
                _ci(r, "r", "boot_lo", "boot_hi")
                if r.level == "mean"
                else _ci(r, "r", "r_lo", "r_hi"),
                _f(r.rho),
                _f(r.p_boot if r.level == "mean" else r.p, 3),
                _f(r.reliability_model),
                _ci(r, "r_disattenuated", "r_disattenuated_lo", "r_disattenuated_hi")
                if pd.notna(r.r_disattenuated)
                else "",
                "; ".join(
                    x
                    for x in (
                        "r̄: stratified bootstrap-t CI and p" if r.level == "mean" else "",
                        _note(r.reason),
                    )
                    if x
                ),
            ]
            for _, r in al.iterrows()
        ),
    )
    for _, r in al[al.level == "within"].iterrows():
        if pd.isna(r.r):
            lines.append(
                f"- **{r.model}, {r.task}**: no correlation can be computed ({_note(r.reason)})."
            )
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
    notes = al.loc[al.level == "within", "reliability_reason"].dropna().unique()
    lines += [f"- Reliability: {n}." for n in notes if n]
    return lines + [""]


def _comparisons(cm: pd.DataFrame) -> list[str]:
    lines = [
        "### Teacher vs student vs baseline (`behaviour/comparisons.csv`)",
        "",
        "Same items, same human cost: dependent correlations. CI and p_boot: studentised paired "
        "bootstrap over items (stratified by task; calibrated for skewed and heavy-tailed costs); "
        "Holm p over the behaviour family; Steiger's normal-theory Z as a secondary check; the "
        "disattenuated difference corrects each r for its model's sampling reliability.",
        "",
    ]
    lines += _table(
        [
            "model a",
            "model b",
            "task",
            "r a",
            "r b",
            "difference [95% CI]",
            "p_boot",
            "Holm p",
            "p (Steiger)",
            "disattenuated difference [95% CI]",
        ],
        (
            [
                r.model_a,
                r.model_b,
                r.task,
                _f(r.r_a),
                _f(r.r_b),
                _ci(r, "diff", "diff_lo", "diff_hi"),
                _f(r.p_boot, 3),
                _f(r.p_holm, 3),
                _f(r.p_steiger, 3),
                _ci(r, "diff_disattenuated", "diff_disattenuated_lo", "diff_disattenuated_hi"),
            ]
            for _, r in cm.iterrows()
        ),
    )
    raw = np.array([_excludes_zero(lo, hi) for lo, hi in zip(cm.diff_lo, cm.diff_hi, strict=True)])
    flagged = cm[raw & (cm.endpoint != "primary").to_numpy()]
    lines += [
        f"- **{r.model_a} vs {r.model_b}, {r.task}**: r differs by "
        f"{_ci(r, 'diff', 'diff_lo', 'diff_hi')} (Holm p = {_f(r.p_holm, 3)}); {_reliability_reading(r)}."
        for _, r in flagged.iterrows()
    ]
    return lines + ([""] if len(flagged) else [])


def _transfer(tr: pd.DataFrame) -> list[str]:
    lines = [
        "### Negative transfer: student vs its own baseline (`behaviour/transfer.csv`)",
        "",
        "Accuracy = mean over items of each item's share of correct samples; its difference is "
        "tested on the per-item paired differences (studentised bootstrap, p_acc); r columns "
        "repeat the student − baseline rows of comparisons.csv.",
        "",
    ]
    lines += _table(
        [
            "student",
            "baseline",
            "task",
            "acc student",
            "acc baseline",
            "acc difference [95% CI]",
            "p_acc",
            "Holm p",
            "r student",
            "r baseline",
            "p_boot (r)",
            "Holm p (r)",
        ],
        (
            [
                r.student,
                r.baseline,
                r.task,
                _f(r.acc_student),
                _f(r.acc_baseline),
                _ci(r, "acc_diff", "acc_diff_lo", "acc_diff_hi", 3),
                _f(r.p_acc, 3),
                _f(r.p_holm, 3),
                _f(r.r_student),
                _f(r.r_baseline),
                _f(r.p_r, 3),
                _f(r.p_r_holm, 3),
            ]
            for _, r in tr.iterrows()
        ),
    )
    return lines


def _inflation_reading(r: pd.Series) -> list[str]:
    who = f"**{r.student} vs {r.reference}**"
    out = []
    if pd.notna(r.p_ratio_equal):
        differ = (
            f"the ratio differs across tasks (Welch p = {_f(r.p_ratio_equal, 4)})"
            if r.p_ratio_equal < ALPHA
            else f"no evidence that the ratio differs across tasks (Welch p = {_f(r.p_ratio_equal, 3)}), "
            "which is not evidence that it is equal"
        )
        equal = (
            f"every pair of task ratios lies within a factor 1.10 (TOST p = {_f(r.p_equivalent_tasks, 4)})"
            if r.p_equivalent_tasks < ALPHA
            else f"equality within a factor 1.10 is not shown (TOST p = {_f(r.p_equivalent_tasks, 3)})"
        )
        out.append(
            f"- {who}, across tasks: random-effects ratio {_ci(r, 'ratio_gmean', 'ratio_lo', 'ratio_hi')} "
            f"(between-task SD of the log ratio τ = {_f(r.tau_logratio, 3)}); {differ}; {equal}."
        )
    if pd.notna(r.p_equivalent):
        tost = f"TOST p = {_f(r.p_equivalent, 4)}"
        if r.p_equivalent < ALPHA:
            constant = f"changes by less than 10% per SD of human difficulty ({tost})"
        elif r.p_constant < ALPHA:
            constant = f"changes with human difficulty (slope p = {_f(r.p_constant, 4)}; {tost})"
        else:
            constant = (
                "is not shown constant over difficulty within ±10% per SD "
                f"({tost}; slope p = {_f(r.p_constant, 3)}, which alone is no evidence of a "
                "constant)"
            )
        out.append(f"- {who}, {r.task}: the multiplier {constant}.")
    return out


def _inflation(inf: pd.DataFrame) -> tuple[list[str], dict]:
    lines = ["### Linear inflation law (`behaviour/inflation.csv`)", ""]
    lines += _table(
        [
            "student",
            "reference",
            "task",
            "slope [CI]",
            "ratio [CI]",
            "log-ratio vs difficulty slope",
            "p (slope ≠ 0)",
            "p (constant ±10%)",
            "cut at budget (student / reference)",
        ],
        (
            [
                r.student,
                r.reference,
                r.task,
                _ci(r, "slope", "slope_lo", "slope_hi"),
                _ci(r, "ratio_gmean", "ratio_lo", "ratio_hi"),
                _f(r.logratio_vs_difficulty_slope, 3),
                _f(r.p_constant, 3),
                _f(r.p_equivalent, 3),
                f"{r.censored_student:.0%} / {r.censored_reference:.0%}",
            ]
            for _, r in inf.iterrows()
        ),
    )
    lines.append(
        "Pooled rows: slope with one intercept per task; ratio = random-effects (DerSimonian–"
        "Laird) ratio over tasks with a Hartung–Knapp t CI."
    )
    lines.append("")
    for _, r in inf[inf.task == "__pooled__"].iterrows():
        lines += _inflation_reading(r)
    cut = inf[inf[["censored_student", "censored_reference"]].max(axis=1) > CENSORED_FLAG]
    lines += [
        f"- **{r.student} vs {r.reference}, {r.task}**: {r.censored_student:.0%} of the student's and "
        f"{r.censored_reference:.0%} of the reference's samples were cut at the budget (counted at it): "
        "ratio biased toward 1 and slope toward 0 — raise max_new_tokens."
        for _, r in cut.iterrows()
    ]
    summary = {
        f"{r.student}/{r.reference}/{r.task}": None
        if pd.isna(r.ratio_gmean)
        else round(float(r.ratio_gmean), 4)
        for _, r in inf.iterrows()
    }
    return lines + [""], summary


def behaviour_section(run: RunLayout) -> tuple[list[str], dict]:
    al = _read(run.behaviour_file("alignment"))
    if al is None:
        return ["## Behaviour", "", "Not run.", ""], {}
    cm = _read(run.behaviour_file("comparisons"))
    tr = _read(run.behaviour_file("transfer"))
    lines = [
        "## Behaviour: does reasoning cost track human cost? (`behaviour/alignment.csv`)",
        "",
        "Model cost of an item = mean over samples of log(1 + reasoning tokens); human cost = log(human RT).",
        "",
    ]
    summary: dict = {}
    if cm is not None and len(cm):
        from experiments.behaviour.multiplicity import family_size

        primary_lines, summary["primary_endpoint"] = _primary(cm, family_size(cm, tr))
        lines += primary_lines
    lines += _alignment(al)
    for _, r in al.iterrows():
        summary.setdefault(str(r.model), {})[f"{r.level}:{r.task}"] = (
            None if pd.isna(r.r) else round(float(r.r), 4)
        )
    if cm is not None and len(cm):
        lines += _comparisons(cm)
    if tr is not None and len(tr):
        lines += _transfer(tr)
    inf = _read(run.behaviour_file("inflation"))
    if inf is not None and len(inf):
        inf_lines, summary["inflation"] = _inflation(inf)
        lines += inf_lines
    return lines, summary
