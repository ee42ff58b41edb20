"""The probes section of ``report.md`` (and its part of ``summary.json``)."""

from __future__ import annotations

from experiments.pipeline.layout import RunLayout
from experiments.pipeline.report.format import _ci, _f, _read, _table


def probe_section(run: RunLayout) -> tuple[list[str], dict]:
    sw = _read(run.probe_sweep)
    if sw is None:
        return ["## Probes", "", "Not run.", ""], {}
    lines = [
        "## Probes: what is linearly decodable before the model thinks? (`probes/probe_sweep.csv`)",
        "",
        "Best site per model and target (score = Spearman ρ of out-of-fold predictions, grouped CV by item; "
        "selectivity = score − control-task score; p = permutation p, family-wise over the sites (max-statistic) "
        "and Bonferroni over the positions, so it holds for the best site picked after looking at all; trivial "
        "baseline = the best `baseline:*` predictor, e.g. prompt length or `feat_*`).",
        "",
    ]
    rows_md, summary = [], {}
    for (model, target), rows in sw.groupby(["model", "target"], sort=False):
        real = rows[~rows.site.str.startswith("baseline:")]
        base = rows[rows.site.str.startswith("baseline:")]
        best = real.loc[real.score.idxmax()]
        p_family = min(1.0, float(best.p_fwe) * real.position.nunique())
        bbest = base.loc[base.score.idxmax()] if len(base) else None
        btxt = f"{bbest.site.split(':', 1)[1]}: {_f(bbest.score)}" if bbest is not None else "none"
        rows_md.append(
            [
                model,
                target,
                best.site,
                _ci(best, "score", "score_lo", "score_hi"),
                _f(best.selectivity),
                _f(p_family, 3),
                btxt,
            ]
        )
        summary.setdefault(str(model), {})[str(target)] = dict(
            site=str(best.site),
            score=round(float(best.score), 4),
            score_lo=round(float(best.score_lo), 4),
            score_hi=round(float(best.score_hi), 4),
            p_family=p_family,
            baseline=None if bbest is None else round(float(bbest.score), 4),
        )
    lines += _table(
        [
            "model",
            "target",
            "best site",
            "score [95% CI]",
            "selectivity",
            "p (family-wise)",
            "trivial baseline",
        ],
        rows_md,
    )
    for model, targets in summary.items():
        for target, s in targets.items():
            decodable = s["score_lo"] > 0 and s["p_family"] < 0.05
            beats = s["baseline"] is None or s["score"] > s["baseline"]
            verdict = "is linearly decodable" if decodable else "is not reliably decodable"
            extra = (
                ""
                if not decodable
                else (
                    " and beats the trivial baseline"
                    if beats
                    else ", but no better than the trivial baseline"
                )
            )
            lines.append(
                f"- **{model}**: `{target}` {verdict} from its residual stream at {s['site']} "
                f"(ρ = {s['score']:.2f} [{s['score_lo']:.2f}, {s['score_hi']:.2f}], family-wise p = {s['p_family']:.3f}){extra}."
            )
    sk = _read(run.probe_skipped)
    if sk is not None and len(sk):
        lines += [""] + [
            f"- not probed: {r.model} × `{r.target}` — {r.reason}" for _, r in sk.iterrows()
        ]
    cmp_ = _read(run.probe_compare)
    if cmp_ is not None and len(cmp_):
        best = cmp_[cmp_.comparison == "best_layer"]
        lines += [
            "",
            "Contrasts between models at their best layers (`probes/compare.csv`, paired bootstrap over items; "
            "scores cross-fitted — best layer picked on one half of the items, scored on the other — so a "
            "model with more layers gains nothing from the pick):",
            "",
        ]
        lines += _table(
            ["target", "model a", "model b", "score a", "score b", "difference [95% CI]"],
            (
                [
                    r.target,
                    r.model_a,
                    r.model_b,
                    _f(r.score_a),
                    _f(r.score_b),
                    _ci(r, "diff", "diff_lo", "diff_hi"),
                ]
                for _, r in best.iterrows()
            ),
        )
    return lines + [""], summary
