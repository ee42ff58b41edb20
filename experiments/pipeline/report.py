"""``report.md`` and ``summary.json`` of a run, written only from the run's own CSVs and tables.

Every number in the report is read from a file of the run (the path is named next to it), so the
report and the CSVs cannot disagree; each finding is one plain paragraph whose wording follows
from the numbers (e.g. whether a CI excludes zero), never the other way round.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.pipeline.layout import RunLayout
from hooks.atomic import atomic_write


def _f(x: Any, nd: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _ci(row: pd.Series, est: str, lo: str, hi: str, nd: int = 2) -> str:
    return f"{_f(row[est], nd)} [{_f(row[lo], nd)}, {_f(row[hi], nd)}]"


def _table(header: list[str], rows) -> list[str]:
    """A markdown table: header, separator, one line per row (cells already formatted), blank line."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""]


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.exists() else None


#: share of traces cut at the budget above which a length statistic is flagged as biased
CENSORED_FLAG = 0.10


def _excludes_zero(lo: float, hi: float) -> bool:
    return not (math.isnan(lo) or math.isnan(hi)) and (lo > 0 or hi < 0)


def _models_section(traces: pd.DataFrame) -> tuple[list[str], dict]:
    by = traces.groupby("model")
    stats = pd.DataFrame({
        "traces": by.size(), "accuracy": by["correct"].mean(),
        "mean_reasoning_tokens": by["reasoning_tokens"].mean(),
        "finished_thinking": by["finished_thinking"].mean(),
    })
    lines = ["## Models and traces (`traces.parquet`)", ""] + _table(
        ["model", "traces", "accuracy", "mean reasoning tokens", "finished thinking"],
        ([m, int(r.traces), f"{r.accuracy:.1%}", f"{r.mean_reasoning_tokens:.1f}", f"{r.finished_thinking:.1%}"]
         for m, r in stats.iterrows()))
    return lines, stats.round(4).to_dict(orient="index")


def _behaviour_section(run: RunLayout) -> tuple[list[str], dict]:
    al = _read(run.behaviour_file("alignment"))
    if al is None:
        return ["## Behaviour", "", "Not run.", ""], {}
    lines = ["## Behaviour: does reasoning cost track human cost? (`behaviour/alignment.csv`)", "",
             "Model cost of an item = mean over samples of log(1 + reasoning tokens); human cost = log(human RT).", ""]
    lines += _table(["model", "task", "level", "n", "r [95% CI]", "ρ", "p", "note"],
                    ([r.model, r.task, r.level, int(r.n) if pd.notna(r.n) else "", _ci(r, "r", "r_lo", "r_hi"),
                      _f(r.rho), _f(r.p, 3), "" if pd.isna(r.get("reason", "")) else r.get("reason", "")]
                     for _, r in al.iterrows()))
    summary: dict = {}
    for _, r in al.iterrows():
        summary.setdefault(str(r.model), {})[f"{r.level}:{r.task}"] = None if pd.isna(r.r) else round(float(r.r), 4)
    for _, r in al[al.level == "within"].iterrows():
        if pd.isna(r.r):
            reason = r.get("reason", "")
            lines.append(f"- **{r.model}, {r.task}**: no correlation can be computed ({reason}).")
        elif _excludes_zero(r.r_lo, r.r_hi):
            sign = "longer" if r.r > 0 else "shorter"
            lines.append(f"- **{r.model}, {r.task}**: the model reasons {sign} on items people take longer "
                         f"on: r = {_ci(r, 'r', 'r_lo', 'r_hi')}, n = {int(r.n)}.")
        else:
            lines.append(f"- **{r.model}, {r.task}**: no reliable relation between its reasoning length and "
                         f"human solving time: r = {_ci(r, 'r', 'r_lo', 'r_hi')} (CI includes 0), n = {int(r.n)}.")
    lines.append("")
    cm = _read(run.behaviour_file("comparisons"))
    if cm is not None and len(cm):
        lines += ["### Teacher vs student vs baseline (`behaviour/comparisons.csv`)", "",
                  "Same items, same human cost: dependent correlations (Steiger's Z; paired bootstrap CI of r_a − r_b).", ""]
        lines += _table(["model a", "model b", "task", "r a", "r b", "difference [95% CI]", "p"],
                        ([r.model_a, r.model_b, r.task, _f(r.r_a), _f(r.r_b), _ci(r, "diff", "diff_lo", "diff_hi"),
                          _f(r.p, 3)] for _, r in cm.iterrows()))
    tr = _read(run.behaviour_file("transfer"))
    if tr is not None and len(tr):
        lines += ["### Negative transfer: student vs its own baseline (`behaviour/transfer.csv`)", ""]
        lines += _table(["student", "baseline", "task", "acc student", "acc baseline", "p (McNemar)", "r student",
                         "r baseline", "p (r)"],
                        ([r.student, r.baseline, r.task, _f(r.acc_student), _f(r.acc_baseline), _f(r.p_mcnemar, 3),
                          _f(r.r_student), _f(r.r_baseline), _f(r.p_r, 3)] for _, r in tr.iterrows()))
    inf = _read(run.behaviour_file("inflation"))
    if inf is not None and len(inf):
        lines += ["### Linear inflation law (`behaviour/inflation.csv`)", ""]
        lines += _table(["student", "reference", "task", "slope [CI]", "geometric-mean ratio",
                         "log-ratio vs difficulty slope", "p (constant)", "cut at budget (student / reference)"],
                        ([r.student, r.reference, r.task, _ci(r, "slope", "slope_lo", "slope_hi"), _f(r.ratio_gmean),
                          _f(r.logratio_vs_difficulty_slope, 3), _f(r.p_constant, 3),
                          f"{r.censored_student:.0%} / {r.censored_reference:.0%}"] for _, r in inf.iterrows()))
        cut = inf[inf[["censored_student", "censored_reference"]].max(axis=1) > CENSORED_FLAG]
        lines += [f"- **{r.student} vs {r.reference}, {r.task}**: {r.censored_student:.0%} of the student's and "
                  f"{r.censored_reference:.0%} of the reference's samples were cut at the budget (counted at it): "
                  "ratio biased toward 1 and slope toward 0 — raise max_new_tokens." for _, r in cut.iterrows()]
        lines += [""] if len(cut) else []
        summary["inflation"] = {f"{r.student}/{r.reference}/{r.task}": None if pd.isna(r.ratio_gmean)
                                else round(float(r.ratio_gmean), 4) for _, r in inf.iterrows()}
    return lines, summary


def _probe_section(run: RunLayout) -> tuple[list[str], dict]:
    sw = _read(run.probe_sweep)
    if sw is None:
        return ["## Probes", "", "Not run.", ""], {}
    lines = ["## Probes: what is linearly decodable before the model thinks? (`probes/probe_sweep.csv`)", "",
             "Best site per model and target (score = Spearman ρ of out-of-fold predictions, grouped CV by item; "
             "selectivity = score − control-task score; p = permutation p, family-wise over the sites (max-statistic) "
             "and Bonferroni over the positions, so it holds for the best site picked after looking at all; trivial "
             "baseline = the best `baseline:*` predictor, e.g. prompt length or `feat_*`).", "",
             ]
    rows_md, summary = [], {}
    for (model, target), rows in sw.groupby(["model", "target"], sort=False):
        real = rows[~rows.site.str.startswith("baseline:")]
        base = rows[rows.site.str.startswith("baseline:")]
        best = real.loc[real.score.idxmax()]
        p_family = min(1.0, float(best.p_fwe) * real.position.nunique())
        bbest = base.loc[base.score.idxmax()] if len(base) else None
        btxt = f"{bbest.site.split(':', 1)[1]}: {_f(bbest.score)}" if bbest is not None else "none"
        rows_md.append([model, target, best.site, _ci(best, "score", "score_lo", "score_hi"),
                        _f(best.selectivity), _f(p_family, 3), btxt])
        summary.setdefault(str(model), {})[str(target)] = dict(
            site=str(best.site), score=round(float(best.score), 4), score_lo=round(float(best.score_lo), 4),
            score_hi=round(float(best.score_hi), 4), p_family=p_family,
            baseline=None if bbest is None else round(float(bbest.score), 4))
    lines += _table(["model", "target", "best site", "score [95% CI]", "selectivity", "p (family-wise)",
                     "trivial baseline"], rows_md)
    for model, targets in summary.items():
        for target, s in targets.items():
            decodable = s["score_lo"] > 0 and s["p_family"] < 0.05
            beats = s["baseline"] is None or s["score"] > s["baseline"]
            verdict = ("is linearly decodable" if decodable else "is not reliably decodable")
            extra = "" if not decodable else (" and beats the trivial baseline" if beats
                                              else ", but no better than the trivial baseline")
            lines.append(f"- **{model}**: `{target}` {verdict} from its residual stream at {s['site']} "
                         f"(ρ = {s['score']:.2f} [{s['score_lo']:.2f}, {s['score_hi']:.2f}], family-wise p = {s['p_family']:.3f}){extra}.")
    sk = _read(run.probe_skipped)
    if sk is not None and len(sk):
        lines += [""] + [f"- not probed: {r.model} × `{r.target}` — {r.reason}" for _, r in sk.iterrows()]
    cmp_ = _read(run.probe_compare)
    if cmp_ is not None and len(cmp_):
        best = cmp_[cmp_.comparison == "best_layer"]
        lines += ["", "Contrasts between models at their best layers (`probes/compare.csv`, paired bootstrap over items; "
                  "scores cross-fitted — best layer picked on one half of the items, scored on the other — so a "
                  "model with more layers gains nothing from the pick):", ""]
        lines += _table(["target", "model a", "model b", "score a", "score b", "difference [95% CI]"],
                        ([r.target, r.model_a, r.model_b, _f(r.score_a), _f(r.score_b),
                          _ci(r, "diff", "diff_lo", "diff_hi")] for _, r in best.iterrows()))
    return lines + [""], summary


def _steering_section(run: RunLayout) -> tuple[list[str], dict]:
    st = _read(run.steering_summary)
    if st is None:
        return ["## Steering", "", "Not run.", ""], {}
    lines = ["## Steering: does the direction cause the allocation? (`steering/steering_summary.csv`)", "",
             "Slope = change of mean log(1 + reasoning tokens) per unit α (α in units of the residual-stream "
             "norm at the site), held-out items only; controls are random directions of equal norm and the "
             "direction of a different target.", "",
             ]
    lines += _table(["model", "direction", "slope [95% CI]", "p", "accuracy change", "most cut at budget"],
                    ([r.model, r.direction, _ci(r, "slope", "slope_lo", "slope_hi", 3), _f(r.p, 3), _f(r.acc_change),
                      f"{r.censored_max:.0%} (α = {r.censored_alpha:g})"] for _, r in st.iterrows()))
    lines += [f"- **{r.model}**, `{r.direction}` direction: {r.censored_max:.0%} of its traces at α = "
              f"{r.censored_alpha:g} were cut at the budget (counted at it), which compresses the slope toward 0 "
              "— raise max_new_tokens (finished share per α: `steering/dose_response.csv`)."
              for _, r in st[st.censored_max > CENSORED_FLAG].iterrows()]
    summary: dict = {}
    for _, r in st.iterrows():
        summary.setdefault(str(r.model), {})[str(r.direction)] = dict(
            slope=round(float(r.slope), 4), lo=round(float(r.slope_lo), 4), hi=round(float(r.slope_hi), 4))
    for model, dirs in summary.items():
        rnd = {d: v for d, v in dirs.items() if d.startswith("random")}
        worst = max((abs(v["slope"]) for v in rnd.values()), default=0.0)
        for d, v in dirs.items():
            if d in rnd:
                continue
            if not _excludes_zero(v["lo"], v["hi"]):
                lines.append(f"- **{model}**, `{d}` direction: no change in reasoning length "
                             f"(slope {v['slope']:.3f}, CI includes 0).")
                continue
            sign = ("longer, as predicted" if v["slope"] > 0
                    else "shorter — the opposite of the prediction")
            spec = (f"larger than every random direction of equal norm (max |slope| {worst:.3f})"
                    if abs(v["slope"]) > worst and all(abs(x["slope"]) < min(abs(v["lo"]), abs(v["hi"])) for x in rnd.values())
                    else f"not clearly larger than random directions of equal norm (max |slope| {worst:.3f})")
            lines.append(f"- **{model}**, `{d}` direction: pushing toward higher `{d}` made it "
                         f"reason {sign} (slope {v['slope']:.3f} [{v['lo']:.3f}, {v['hi']:.3f}]); the effect is "
                         f"{spec}. The dose-response (`steering/dose_response.csv`, figure) shows its shape.")
    return lines + [""], summary


def write_report(cfg, run: RunLayout, timings: dict[str, float], reused: set[str] = frozenset()) -> dict:
    """Write the run's ``report.md`` and ``summary.json`` from its files; returns the summary."""
    items = pd.read_parquet(run.items)
    traces = pd.read_parquet(run.traces)
    lines = [f"# handan report: {cfg.name}", "",
             f"{len(items)} items in {items['task'].nunique()} tasks ({', '.join(sorted(items['task'].unique()))}); "
             f"models: {', '.join(traces['model'].unique())}.", ""]
    model_lines, model_summary = _models_section(traces)
    sections = [_behaviour_section(run), _probe_section(run), _steering_section(run)]
    lines += model_lines
    for sec, _ in sections:
        lines += sec
    figures = sorted(run.figures.glob("*.png"))
    if figures:
        lines += ["## Figures", ""] + [f"![{f.stem}](figures/{f.name})" for f in figures] + [""]
    lines += ["## Reproduce", "", "```", f"handan run {run.config}", "```", "",
              "## Stage timings (wall seconds when the stage last ran)", ""]
    lines += _table(["stage", "seconds", "this run"],
                    ([k, f"{v:.1f}", "reused" if k in reused else "ran"] for k, v in timings.items()))
    atomic_write(run.report, ("\n".join(lines) + "\n").encode())
    summary = dict(name=cfg.name, n_items=len(items), models=model_summary,
                   alignment=sections[0][1], probes=sections[1][1], steering=sections[2][1],
                   timings={k: round(v, 2) for k, v in timings.items()}, reused=sorted(reused))
    atomic_write(run.summary, json.dumps(summary, indent=2, default=float).encode())
    return summary
