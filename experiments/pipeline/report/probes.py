"""The probes section of ``report.md`` (and its part of ``summary.json``).

Primary probe endpoint: the teacher - student (and student - baseline, teacher - baseline)
difference of selection-adjusted best-layer scores, ``compare.csv`` rows with ``endpoint ==
"primary"``, Holm-adjusted over all of them (``p_holm``). Secondary families: the pre-registered
relative depths (``compare.csv``, Holm), and in ``best_site.csv`` the decodability screen
(``p_fwe`` → ``p_bh``, Benjamini-Hochberg over the model × target rows: permutation p-values
have a floor that Holm would multiply) and the best site vs its trivial baseline
(``p_baseline`` → ``p_baseline_holm``).
"""

from __future__ import annotations

import math

import pandas as pd

from experiments.pipeline.layout import RunLayout
from experiments.pipeline.report.format import _ci, _f, _read, _table


def _p(x: float) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    return "< 0.001" if x < 0.001 else f"{x:.3f}"


def probe_section(run: RunLayout) -> tuple[list[str], dict]:
    sw = _read(run.probe_sweep)
    if sw is None:
        return ["## Probes", "", "Not run.", ""], {}
    lines = [
        "## Probes: what is linearly decodable before the model thinks? (`probes/best_site.csv`)",
        "",
    ]
    best = _read(run.probe_best_site)
    if best is None:
        return lines + ["`probes/best_site.csv` is missing: rerun the probes stage.", ""], {}
    lines += [
        "Best site per model and target, selection-adjusted: picked on one half of the items and "
        "scored on the other by a cross-validation refitted inside that half, both ways, over "
        f"{int(best.n_splits.max())} random halvings (score = fold-wise Spearman ρ at half the "
        "items; `picked` = share of halves that chose the site; the raw full-data score of that "
        "site, `probes/probe_sweep.csv`, is biased upward by the pick). p = permutation max-T "
        "over every site × position (`p_fwe`), Benjamini-Hochberg over the model × target rows "
        "(a permutation p cannot go below 1 / (1 + n_permutations), a floor Holm would "
        "multiply by the number of rows). "
        "Site − baseline: paired difference from the best trivial `baseline:*` predictor "
        "(prompt length, `feat_*`, token index), on the same halves, Holm-adjusted.",
        "",
    ]
    rows_md, summary = [], {}
    for r in best.itertuples():
        rows_md.append(
            [
                r.model,
                r.target,
                f"{r.site} ({r.picked:.0%})",
                _ci(best.loc[r.Index], "score", "score_lo", "score_hi"),
                _f(r.score_raw),
                _p(r.p_bh),
                f"{r.baseline}: {_f(r.baseline_score)}" if r.baseline == r.baseline else "none",
                _ci(best.loc[r.Index], "diff_baseline", "diff_baseline_lo", "diff_baseline_hi"),
                _p(r.p_baseline_holm),
            ]
        )
        summary.setdefault(str(r.model), {})[str(r.target)] = dict(
            site=str(r.site),
            position=str(r.position),
            score=round(float(r.score), 4),
            score_lo=round(float(r.score_lo), 4),
            score_hi=round(float(r.score_hi), 4),
            score_raw=round(float(r.score_raw), 4),
            p_family=float(r.p_fwe),
            p_bh=float(r.p_bh),
            baseline=None if r.baseline != r.baseline else str(r.baseline),
            diff_baseline=round(float(r.diff_baseline), 4),
            diff_baseline_lo=round(float(r.diff_baseline_lo), 4),
            diff_baseline_hi=round(float(r.diff_baseline_hi), 4),
        )
    lines += _table(
        [
            "model",
            "target",
            "best site (picked)",
            "score [95% CI]",
            "raw score",
            "p (max-T, BH)",
            "trivial baseline",
            "site − baseline [95% CI]",
            "p (Holm)",
        ],
        rows_md,
    )
    for model, targets in summary.items():
        for target, s in targets.items():
            lines.append(f"- **{model}**: `{target}` {_verdict(s)}.")
    sk = _read(run.probe_skipped)
    if sk is not None and len(sk):
        lines += [""] + [
            f"- not probed: {r.model} × `{r.target}` — {r.reason}" for _, r in sk.iterrows()
        ]
    cmp_ = _read(run.probe_compare)
    if cmp_ is not None and len(cmp_):
        lines += _contrasts(cmp_)
    return lines + [""], summary


def _verdict(s: dict) -> str:
    decodable = s["score_lo"] > 0 and s["p_bh"] < 0.05
    where = (
        f"at {s['site']} (ρ = {s['score']:.2f} [{s['score_lo']:.2f}, {s['score_hi']:.2f}], "
        f"max-T p = {_p(s['p_bh'])} after BH)"
    )
    if not decodable:
        return f"is not reliably decodable from its residual stream (best: {where})"
    text = f"is linearly decodable from its residual stream {where}"
    if s["baseline"] is None:
        return text
    lo, hi = s["diff_baseline_lo"], s["diff_baseline_hi"]
    if lo > 0:
        return text + f" and beats the trivial baseline `{s['baseline']}` (paired CI above 0)"
    if hi < 0:
        return text + f", but less well than the trivial baseline `{s['baseline']}`"
    return text + f", not distinguishable from the trivial baseline `{s['baseline']}`"


def _contrasts(cmp_: pd.DataFrame) -> list[str]:
    lines = [
        "",
        "**Primary probe endpoint**: model a − model b in selection-adjusted best-layer score "
        "(`probes/compare.csv`, `endpoint` = primary): each model's layer picked on one half of "
        "the items and scored on the other by a CV refitted inside it, over the same halvings "
        "for both models, so neither more layers nor wider residuals gain from the pick. CI and "
        "p: paired delete-one-item jackknife (each deletion refitted, picks held) plus the "
        "halvings' variance; "
        "`p_holm` over every row of this table.",
        "",
    ]
    header = ["target", "model a", "model b", "position", "score a", "score b", "a − b [95% CI]"]
    header += ["p", "p (Holm)"]

    def body(rows: pd.DataFrame, first: str) -> list:
        return [
            [
                r.target,
                r.model_a,
                r.model_b,
                r.position if first == "position" else f"{r.site_a} vs {r.site_b}",
                _f(r.score_a),
                _f(r.score_b),
                _ci(rows.loc[r.Index], "diff", "diff_lo", "diff_hi"),
                _p(r.p),
                _p(r.p_holm),
            ]
            for r in rows.itertuples()
        ]

    lines += _table(header, body(cmp_[cmp_.endpoint == "primary"], "position"))
    depth = cmp_[cmp_.endpoint == "secondary"]
    if len(depth):
        levels = ", ".join(f"{d:g}" for d in sorted(depth.depth.unique()))
        lines += [
            f"Secondary: pre-registered relative depths ({levels}; each model's layer nearest "
            "to it, no selection), same CI and p, Holm over these rows:",
            "",
        ]
        depth = depth.sort_values(["target", "model_a", "model_b", "depth"])
        lines += _table(
            header[:3] + ["depth: layers"] + header[4:],
            [
                row[:3] + [f"{d:g}: {row[3]}"] + row[4:]
                for row, d in zip(body(depth, "layers"), depth.depth, strict=True)
            ],
        )
    return lines
