"""The steering section of ``report.md`` (and its part of ``summary.json``).

Primary endpoint per model and targeted direction: the slope over ``±alpha_max`` (the linear
range found on the fit items), tested by its cluster-robust p and compared with the slopes of
the random directions of equal norm (``p_random``); the whole curve is reported beside it with
its non-linearity test. The verdict reads those, never a bootstrap percentile interval.
"""

from __future__ import annotations

from experiments.pipeline.layout import RunLayout
from experiments.pipeline.report.format import CENSORED_FLAG, _ci, _f, _read, _table
from experiments.steering.analysis import RANDOM_PREFIX
from experiments.steering.outputs import LINEAR_CSV, SITE_CSV

ALPHA = 0.05


def _verdict(r) -> str:
    head = f"- **{r.model}**, `{r.direction}` direction (|α| ≤ {r.alpha_max:g}): "
    if not r.p < ALPHA:
        return head + (
            f"no change in reasoning length detected (slope {r.slope:.3f} "
            f"[{r.slope_lo:.3f}, {r.slope_hi:.3f}], p = {_f(r.p, 3)})."
        )
    sign = "longer, as predicted" if r.slope > 0 else "shorter — the opposite of the prediction"
    text = (
        head + f"pushing toward higher `{r.direction}` made it reason {sign} (slope "
        f"{r.slope:.3f} [{r.slope_lo:.3f}, {r.slope_hi:.3f}], p = {_f(r.p, 3)}); "
    )
    if not r.n_random:
        return text + "no random directions to compare it with."
    spread = f"their slopes span [{r.random_lo:.3f}, {r.random_hi:.3f}]"
    if r.p_random < ALPHA:
        return text + (
            f"larger than every one of {r.n_random:.0f} random directions of equal norm "
            f"(p_random = {r.p_random:.3f}; {spread})."
        )
    return text + (
        f"not larger than random directions of equal norm (p_random = {r.p_random:.3f} over "
        f"{r.n_random:.0f}; {spread}): pushing this hard along any direction moves length."
    )


def steering_section(run: RunLayout) -> tuple[list[str], dict]:
    st = _read(run.steering_summary)
    if st is None:
        return ["## Steering", "", "Not run.", ""], {}
    lines = [
        "## Steering: does the direction cause the allocation? (`steering/steering_summary.csv`)",
        "",
        "Slope = change of mean log(1 + reasoning tokens) per unit α (α in units of the residual-stream "
        "norm where the vector is added), held-out items only, over ±α_max: the linear range, where "
        "random directions of equal norm barely change length on the fit items (pre-registered rule, "
        "`steering/linear_range.csv`). CI and p are cluster-robust (items as clusters, t); "
        "p_random ranks the slope's size among the random directions' slopes (each random "
        "direction's own row: `steering/steering_summary.csv`). The whole curve (every α) has its "
        "own slope and a test of curvature (p of an α² term).",
        "",
    ]
    targeted = st[~st["direction"].astype(str).str.startswith(RANDOM_PREFIX)]
    linear, sites = _read(run.steering / LINEAR_CSV), _read(run.steering / SITE_CSV)
    if linear is not None and len(linear):
        for model, rows in linear.groupby("model", sort=False):
            within = bool(rows["within"].any())
            where = f" at `{rows['site'].iloc[0]}`" if "site" in rows else ""
            chosen = "" if sites is None else _site_text(sites, model)
            lines.append(
                f"- **{model}**{where}{chosen}: α_max = {rows['alpha_max'].iloc[0]:g}"
                + (
                    ""
                    if within
                    else " — even the smallest |α| of the grid moved length by more than the "
                    f"tolerance ({rows['tolerance'].iloc[0]:g}): no linear regime on the grid"
                )
                + "."
            )
        lines.append("")
    lines += _table(
        [
            "model",
            "direction",
            "slope [95% CI]",
            "p",
            "p_random (n)",
            "random slopes (95%)",
            "whole curve: slope, p(α²)",
            "accuracy change",
            "most cut at budget",
        ],
        (
            [
                r.model,
                r.direction,
                _ci(r, "slope", "slope_lo", "slope_hi", 3),
                _f(r.p, 3),
                f"{_f(r.p_random, 3)} ({r.n_random:.0f})" if r.n_random else "",
                f"[{_f(r.random_lo, 3)}, {_f(r.random_hi, 3)}]" if r.n_random else "",
                f"{_f(r.slope_full, 3)}, {_f(r.p_quadratic, 3)}",
                _f(r.acc_change),
                f"{r.censored_max:.0%} (α = {r.censored_alpha:g})",
            ]
            for _, r in targeted.iterrows()
        ),
    )
    lines += [
        f"- **{r.model}**, `{r.direction}` direction: {r.censored_max:.0%} of its traces at α = "
        f"{r.censored_alpha:g} never closed the think span (cut at the budget, or stopped inside "
        "it), which compresses the slope toward 0 — raise max_new_tokens if they were cut "
        "(finished share per α: `steering/dose_response.csv`)."
        for _, r in st[st.censored_max > CENSORED_FLAG].iterrows()
    ]
    lines += [_verdict(r) for r in targeted.itertuples()]
    lines += [
        f"- **{r.model}**, `{r.direction}` direction: the whole curve is not linear (p of the α² "
        f"term {r.p_quadratic:.3g}); one slope does not summarise it — see the dose-response figure."
        for r in targeted.itertuples()
        if r.p_quadratic < ALPHA
    ]
    summary: dict = {}
    for r in targeted.itertuples():
        summary.setdefault(str(r.model), {})[str(r.direction)] = dict(
            alpha_max=float(r.alpha_max),
            slope=round(float(r.slope), 4),
            lo=round(float(r.slope_lo), 4),
            hi=round(float(r.slope_hi), 4),
            p=float(r.p),
            p_random=None if not r.n_random else float(r.p_random),
        )
    return lines + [""], summary


def _site_text(sites, model: str) -> str:
    rows = sites[(sites["model"] == model) & sites["chosen"]]
    if rows.empty:
        return ""
    r = rows.iloc[0]
    return f" (chosen on the fit items: fold-wise ρ = {r['score']:.2f} for `{r['target']}`)"
