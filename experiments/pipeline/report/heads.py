"""The attention-heads part of the probes section (``probes/heads_*.csv``, written by
``experiments.pipeline.head_stage``).

Its own families: ``p_fwe`` is max-T over every layer x head x position of one model (not shared
with the layer sweep); the teacher - student head contrasts are Holm-adjusted within each
endpoint (``best_head`` primary, pre-registered depths secondary).
"""

from __future__ import annotations

import pandas as pd

from experiments.pipeline.head_stage import (
    HEADS_BEST_CSV,
    HEADS_COMPARE_CSV,
    HEADS_SKIPPED_CSV,
    HEADS_SWEEP_CSV,
)
from experiments.pipeline.layout import RunLayout
from experiments.pipeline.report.format import _ci, _excludes_zero, _f, _read, _table
from experiments.pipeline.report.probes import _p

TOP = 3  # heads listed per model x target


def head_section(run: RunLayout) -> tuple[list[str], dict]:
    """Markdown lines and summary of the per-head probes; nothing when the stage made none."""
    best = _read(run.probes / HEADS_BEST_CSV)
    skipped = _read(run.probes / HEADS_SKIPPED_CSV)
    if best is None:
        if skipped is None or skipped.empty:
            return [], {}
        return ["### Attention heads", ""] + _skipped(skipped) + [""], {}
    sweep = _read(run.probes / HEADS_SWEEP_CSV)
    lines = [
        f"### Attention heads (`probes/{HEADS_BEST_CSV}`, `probes/{HEADS_SWEEP_CSV}`)",
        "",
        "Each head's output before the output projection (`attn_z.L.H`, d_head wide), recorded "
        "teacher-forced at the prompt, probed as a layer is (grouped CV, trivial baselines, "
        "permutation null). Best head: selection-adjusted (picked on one half of the items, "
        "scored on the other, over random halvings); p = max-T over every layer × head of the "
        "model (its own family). Top heads: full-data fold-wise score with its item-bootstrap CI "
        "(biased upward by the pick).",
        "",
    ]
    rows, summary = [], {}
    for r in best.itertuples():
        own = sweep[(sweep.model == r.model) & (sweep.target == r.target)].head(TOP)
        top = ", ".join(
            f"{s.site} {_ci(s, 'score', 'score_lo', 'score_hi')}" for _, s in own.iterrows()
        )
        rows.append(
            [
                r.model,
                r.target,
                int(r.n_heads),
                f"{r.site} ({r.picked:.0%})",
                _ci(best.loc[r.Index], "score", "score_lo", "score_hi"),
                _p(r.p_fwe),
                _ci(best.loc[r.Index], "diff_baseline", "diff_baseline_lo", "diff_baseline_hi"),
                top,
            ]
        )
        summary.setdefault(str(r.model), {})[str(r.target)] = dict(
            site=str(r.site),
            n_heads=int(r.n_heads),
            score=round(float(r.score), 4),
            score_lo=round(float(r.score_lo), 4),
            score_hi=round(float(r.score_hi), 4),
            p_family=float(r.p_fwe),
        )
    lines += _table(
        [
            "model",
            "target",
            "heads",
            "best head (picked)",
            "score [95% CI]",
            "p (max-T)",
            "head − baseline [95% CI]",
            f"top {TOP} heads, raw score [95% CI]",
        ],
        rows,
    )
    cmp_ = _read(run.probes / HEADS_COMPARE_CSV)
    if cmp_ is not None and len(cmp_):
        lines += _contrasts(cmp_)
        summary["contrasts"] = [
            dict(
                target=str(r.target),
                model_a=str(r.model_a),
                model_b=str(r.model_b),
                comparison=str(r.comparison),
                depth=None if r.depth != r.depth else float(r.depth),
                diff=round(float(r.diff), 4),
                diff_lo=round(float(r.diff_lo), 4),
                diff_hi=round(float(r.diff_hi), 4),
                p_holm=float(r.p_holm),
            )
            for r in cmp_.itertuples()
        ]
    else:
        lines += ["No teacher − student head contrast: the run has no triple with both probed.", ""]
    if skipped is not None and len(skipped):
        lines += _skipped(skipped) + [""]
    ablation, summary["ablation"] = _ablation(run)
    return lines + ablation, summary


def _ablation(run: RunLayout) -> tuple[list[str], dict]:
    """The head-ablation control of the steering stage (``steering/head_ablation_summary.csv``)."""
    from experiments.steering.ablation import (
        CHOSEN,
        HEAD_ABLATION_SUMMARY_CSV,
        HEAD_CHOICE_CSV,
    )

    summary = _read(run.steering / HEAD_ABLATION_SUMMARY_CSV)
    choice = _read(run.steering / HEAD_CHOICE_CSV)
    if summary is None or choice is None:
        return [], {}
    lines = [
        f"**Ablating the heads** (`steering/{HEAD_ABLATION_SUMMARY_CSV}`): each model's best "
        "heads for the steering target on the fit items (`steering/head_choice.csv`) ablated on "
        "the held-out items at doses t (output moved to (1 − t)·z + t·m), against random sets of "
        "as many other heads at the same doses. Slope = change of mean log(1 + reasoning "
        "tokens) per unit dose, cluster-robust CI and p; p_random = rank of |slope| among the "
        "random sets'.",
        "",
    ]
    out, rows = {}, []
    for r in summary[summary.direction == CHOSEN].itertuples():
        heads = choice[(choice.model == r.model) & choice.chosen].site.tolist()
        rows.append(
            [
                r.model,
                ", ".join(heads),
                _ci(summary.loc[r.Index], "slope", "slope_lo", "slope_hi", 3),
                _p(r.p),
                f"{_p(r.p_random)} ({int(r.n_random)} sets)",
            ]
        )
        out[str(r.model)] = dict(
            heads=heads, slope=round(float(r.slope), 4), p=float(r.p), p_random=float(r.p_random)
        )
    lines += _table(["model", "heads ablated", "slope [95% CI]", "p", "p_random"], rows)
    return lines, out


def _contrasts(cmp_: pd.DataFrame) -> list[str]:
    lines = [
        f"Teacher − student (`probes/{HEADS_COMPARE_CSV}`). Heads are not matched one to one "
        "(two models' heads have no correspondence, and their numbers differ): `best head` "
        "compares each model's own best head, picked on one half and scored on the other over "
        "the same halvings (primary); `depth q` compares the best head of each model's layer "
        "nearest relative depth q (layers matched by depth, heads within them by the same "
        "cross-fitted pick; secondary). CI and p: paired delete-one-item jackknife (each deletion "
        "refitted) plus the halvings' variance; Holm within each endpoint.",
        "",
    ]
    rows = []
    for r in cmp_.itertuples():
        what = "best head" if r.comparison == "best_head" else f"depth {r.depth:g}"
        rows.append(
            [
                r.target,
                f"{r.model_a} − {r.model_b}",
                what,
                f"{r.site_a} vs {r.site_b}",
                f"{_f(r.score_a)} vs {_f(r.score_b)}",
                _ci(cmp_.loc[r.Index], "diff", "diff_lo", "diff_hi"),
                _p(r.p_holm),
            ]
        )
    lines += _table(
        [
            "target",
            "models",
            "comparison",
            "heads (modal pick)",
            "scores",
            "a − b [95% CI]",
            "p (Holm)",
        ],
        rows,
    )
    primary = cmp_[cmp_.comparison == "best_head"]
    for r in primary.itertuples():
        if _excludes_zero(r.diff_lo, r.diff_hi) and r.p_holm < 0.05:
            word = "more" if r.diff > 0 else "less"
            lines.append(
                f"- `{r.target}`: {r.model_a}'s best head decodes it {word} than {r.model_b}'s "
                f"({_ci(primary.loc[r.Index], 'diff', 'diff_lo', 'diff_hi')}, Holm p = {_p(r.p_holm)})."
            )
        else:
            lines.append(
                f"- `{r.target}`: the best heads of {r.model_a} and {r.model_b} are not "
                f"distinguishable ({_ci(primary.loc[r.Index], 'diff', 'diff_lo', 'diff_hi')})."
            )
    return lines + [""]


def _skipped(skipped: pd.DataFrame) -> list[str]:
    return [
        f"- heads not probed: {r.model} × `{r.target}` — {r.reason}" for r in skipped.itertuples()
    ]
