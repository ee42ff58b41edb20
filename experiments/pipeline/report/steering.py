"""The steering section of ``report.md`` (and its part of ``summary.json``)."""

from __future__ import annotations

from experiments.pipeline.layout import RunLayout
from experiments.pipeline.report.format import CENSORED_FLAG, _ci, _excludes_zero, _f, _read, _table


def steering_section(run: RunLayout) -> tuple[list[str], dict]:
    st = _read(run.steering_summary)
    if st is None:
        return ["## Steering", "", "Not run.", ""], {}
    lines = [
        "## Steering: does the direction cause the allocation? (`steering/steering_summary.csv`)",
        "",
        "Slope = change of mean log(1 + reasoning tokens) per unit α (α in units of the residual-stream "
        "norm at the site), held-out items only; controls are random directions of equal norm and the "
        "direction of a different target.",
        "",
    ]
    lines += _table(
        ["model", "direction", "slope [95% CI]", "p", "accuracy change", "most cut at budget"],
        (
            [
                r.model,
                r.direction,
                _ci(r, "slope", "slope_lo", "slope_hi", 3),
                _f(r.p, 3),
                _f(r.acc_change),
                f"{r.censored_max:.0%} (α = {r.censored_alpha:g})",
            ]
            for _, r in st.iterrows()
        ),
    )
    lines += [
        f"- **{r.model}**, `{r.direction}` direction: {r.censored_max:.0%} of its traces at α = "
        f"{r.censored_alpha:g} were cut at the budget (counted at it), which compresses the slope toward 0 "
        "— raise max_new_tokens (finished share per α: `steering/dose_response.csv`)."
        for _, r in st[st.censored_max > CENSORED_FLAG].iterrows()
    ]
    summary: dict = {}
    for _, r in st.iterrows():
        summary.setdefault(str(r.model), {})[str(r.direction)] = dict(
            slope=round(float(r.slope), 4),
            lo=round(float(r.slope_lo), 4),
            hi=round(float(r.slope_hi), 4),
        )
    for model, dirs in summary.items():
        rnd = {d: v for d, v in dirs.items() if d.startswith("random")}
        worst = max((abs(v["slope"]) for v in rnd.values()), default=0.0)
        for d, v in dirs.items():
            if d in rnd:
                continue
            if not _excludes_zero(v["lo"], v["hi"]):
                lines.append(
                    f"- **{model}**, `{d}` direction: no change in reasoning length "
                    f"(slope {v['slope']:.3f}, CI includes 0)."
                )
                continue
            sign = (
                "longer, as predicted"
                if v["slope"] > 0
                else "shorter — the opposite of the prediction"
            )
            spec = (
                f"larger than every random direction of equal norm (max |slope| {worst:.3f})"
                if abs(v["slope"]) > worst
                and all(abs(x["slope"]) < min(abs(v["lo"]), abs(v["hi"])) for x in rnd.values())
                else f"not clearly larger than random directions of equal norm (max |slope| {worst:.3f})"
            )
            lines.append(
                f"- **{model}**, `{d}` direction: pushing toward higher `{d}` made it "
                f"reason {sign} (slope {v['slope']:.3f} [{v['lo']:.3f}, {v['hi']:.3f}]); the effect is "
                f"{spec}. The dose-response (`steering/dose_response.csv`, figure) shows its shape."
            )
    return lines + [""], summary
