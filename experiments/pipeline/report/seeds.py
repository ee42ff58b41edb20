"""The seeds section of ``report.md``: per-triple numbers, their across-triple mean and spread,
and the across-pairs test of the paper's headline (teachers' r̄ vs students' r̄ over pairs).

A *triple* is one teacher → student ← baseline set of the run (several independently trained
seeds of the organism, or several model families). Per triple: each model's r̄ (Fisher-z mean of
its within-task r's, ``behaviour/alignment.csv`` level ``mean``, with its CI), cross-task r
(level ``cross``) and accuracy (``traces.parquet``); across triples: mean, SD and range.

**Across-pairs test.** Estimand: the mean over triples of d = r̄_teacher − r̄_student (the
paper's teachers 0.64 vs students 0.34 over 14 models), on the run's items. Triples trained
independently with the same recipe give, for fixed items, independent and identically
distributed d's; the test is the one-sample t-test of mean d = 0 (df = triples − 1) with its t
confidence interval, and an exact sign-flip p (all 2^n sign patterns of the d's), which needs no
normality but cannot fall below 2 / 2^n (0.25 with 3 triples). Primary endpoint: teacher −
student; secondary: student − baseline (Negative Transfer over pairs); Holm over the two t p's.

Measured by simulation (``python -m benchmarks.seeds_pairs``: 5 tasks of 256 / 136 / 16 / 52 / 56
items, human cost = latent difficulty + noise, each seed's model cost = its own slope (seed-to-seed
SD 0.15) x difficulty + noise, r̄ as in ``alignment.csv``; 1,000 runs per row): under the null
(equal teacher and student recipes) the mean d is 0.0002 / 0.0002 / 0.0007 (bias) and the
t-test's size at α = .05 is 0.052 / 0.052 / 0.058 with 3 / 5 / 14 triples; the sign-flip test's
is 0.000 / 0.000 / 0.060 (below 6 triples it cannot reach p < .05); with a true difference (slopes
0.8 vs 0.5) the 95% t CI covers the mean d of 1,000 further seed pairs in 0.949 / 0.944 / 0.948
of runs.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from experiments.pipeline.layout import RunLayout
from experiments.pipeline.report.format import _excludes_zero, _f, _read, _table

ROLES = ("teacher", "student", "baseline")
CONTRASTS = (("teacher", "student", "primary"), ("student", "baseline", "secondary"))


def across_pairs(d) -> dict[str, float]:
    """Mean of the paired differences ``d`` with its t CI, the t-test p and the exact sign-flip
    p (two-sided, all sign patterns); NaN where fewer than 2 differences or no spread."""
    d = np.asarray([x for x in d if not math.isnan(x)], dtype=float)
    n = len(d)
    out = {"n": n, "mean": float(d.mean()) if n else math.nan}
    out |= {"lo": math.nan, "hi": math.nan, "p_t": math.nan, "p_sign": math.nan}
    if n < 2:
        return out
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    out["p_sign"] = float(np.mean(np.abs((signs * d).mean(1)) >= abs(d.mean()) - 1e-12))
    se = d.std(ddof=1) / math.sqrt(n)
    if se > 1e-12 * max(1.0, abs(out["mean"])):  # no spread: no t-test
        half = stats.t.ppf(0.975, n - 1) * se
        out |= {"lo": out["mean"] - half, "hi": out["mean"] + half}
        out["p_t"] = float(2 * stats.t.sf(abs(out["mean"]) / se, n - 1))
    return out


def holm(p: list[float]) -> list[float]:
    """Holm-adjusted p's (NaN stays NaN and does not count)."""
    order = sorted((x, i) for i, x in enumerate(p) if not math.isnan(x))
    adjusted, running = [math.nan] * len(p), 0.0
    for rank, (x, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * x))
        adjusted[i] = running
    return adjusted


def triple_table(triples: list[dict], alignment: pd.DataFrame, traces: pd.DataFrame):
    """One row per triple: per role the model, r̄ and its CI, cross-task r and accuracy."""
    mean = alignment[alignment["level"] == "mean"].set_index("model")
    cross = alignment[alignment["level"] == "cross"].set_index("model")["r"]
    accuracy = traces.groupby("model")["correct"].mean()
    rows = []
    for t in triples:
        row = {}
        for role in ROLES:
            model = t.get(role)
            row[role] = model
            got = mean.loc[model] if model in mean.index else None
            for key in ("r", "r_lo", "r_hi"):
                row[f"{role}_{key}"] = math.nan if got is None else float(got[key])
            row[f"{role}_cross"] = float(cross.get(model, math.nan))
            row[f"{role}_acc"] = float(accuracy.get(model, math.nan))
        rows.append(row)
    return pd.DataFrame(rows)


def seeds_summary(triples: list[dict], alignment: pd.DataFrame, traces: pd.DataFrame) -> dict:
    """The per-triple table, per-role mean / SD / range, and the two across-pairs tests."""
    table = triple_table(triples, alignment, traces)
    spread = {
        f"{role}_{what}": {
            "mean": float(table[f"{role}_{what}"].mean()),
            "sd": float(table[f"{role}_{what}"].std(ddof=1)) if len(table) > 1 else math.nan,
            "min": float(table[f"{role}_{what}"].min()),
            "max": float(table[f"{role}_{what}"].max()),
        }
        for role in ROLES
        for what in ("r", "cross", "acc")
    }
    tests = {
        f"{a}-{b}": across_pairs(table[f"{a}_r"] - table[f"{b}_r"]) | {"endpoint": kind}
        for a, b, kind in CONTRASTS
    }
    for test, adjusted in zip(tests.values(), holm([t["p_t"] for t in tests.values()])):
        test["p_holm"] = adjusted
    return {"triples": table.to_dict(orient="records"), "spread": spread, "tests": tests}


def _sentence(a: str, b: str, test: dict) -> str:
    est = f"{_f(test['mean'])} [{_f(test['lo'])}, {_f(test['hi'])}]"
    where = f"mean r̄_{a} − r̄_{b} over {test['n']} pairs = {est}, t-test p = {_f(test['p_t'], 3)}"
    where += f" (Holm {_f(test['p_holm'], 3)}), sign-flip p = {_f(test['p_sign'], 3)}"
    if test["n"] < 2 or math.isnan(test["lo"]):
        return f"- **{a} vs {b}**: not testable over pairs ({where})."
    if _excludes_zero(test["lo"], test["hi"]):
        word = "more" if test["mean"] > 0 else "less"
        return f"- **{a} vs {b}**: {a}s track human cost {word} than their {b}s: {where}."
    return f"- **{a} vs {b}**: no reliable difference across pairs: {where}."


def seeds_section(cfg, run: RunLayout) -> tuple[list[str], dict]:
    """Per-seed numbers, across-seed mean and spread, and the across-pairs tests."""
    from experiments.pipeline.stages import resolve_specs, triples

    alignment = _read(run.behaviour_file("alignment"))
    pairing = [t for t in triples(cfg, resolve_specs(cfg)) if "baseline" in t]
    if alignment is None or not pairing:
        return [], {}
    result = seeds_summary(pairing, alignment, pd.read_parquet(run.traces))
    lines = [
        "## Seeds: how much of teacher − student is the luck of one training run? "
        "(`behaviour/alignment.csv`, `traces.parquet`)",
        "",
        "One row per teacher → student ← baseline triple; r̄ = Fisher-z mean of a model's "
        "within-task r (95% CI), cross-task r = r over task means, acc = share of correct samples.",
        "",
    ]
    lines += _table(
        ["triple", *(f"r̄ {r}" for r in ROLES), *(f"cross-task r {r}" for r in ROLES)]
        + [f"acc {r}" for r in ROLES],
        (
            [row["teacher"]]
            + [
                f"{_f(row[f'{r}_r'])} [{_f(row[f'{r}_r_lo'])}, {_f(row[f'{r}_r_hi'])}]"
                for r in ROLES
            ]
            + [_f(row[f"{r}_cross"]) for r in ROLES]
            + [_f(row[f"{r}_acc"]) for r in ROLES]
            for row in result["triples"]
        ),
    )
    spread = result["spread"]
    lines += ["Across triples (mean, SD, range):", ""]
    lines += _table(
        ["role", "r̄", "cross-task r", "accuracy"],
        (
            [role]
            + [
                f"{_f(s['mean'])} (SD {_f(s['sd'])}; {_f(s['min'])} to {_f(s['max'])})"
                for s in (spread[f"{role}_{w}"] for w in ("r", "cross", "acc"))
            ]
            for role in ROLES
        ),
    )
    lines += [
        "Across-pairs tests (one difference of r̄ per triple; t-test over triples, t 95% CI; "
        "primary endpoint teacher − student, Holm over the two):",
        "",
    ]
    lines += [_sentence(*key.split("-"), test) for key, test in result["tests"].items()]
    return lines + [""], result
