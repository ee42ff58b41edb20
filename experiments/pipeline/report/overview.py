"""The newcomer's parts of ``report.md``: a first screen ("In brief": what was tested, on which
items and models, the main results in plain words with their CIs) and example traces.

Every number is taken from the other sections' summaries (``behaviour/alignment.csv`` via the
seeds section, ``behaviour/transfer.csv``, the probe and steering summaries) or from
``items.parquet`` / ``traces.parquet``; a result whose file or column is absent is left out, not
guessed. Example traces: in the task with the most items, the item people solved fastest (easy)
and slowest (hard; geometric mean of the kept correct-trial RTs); per model, its shortest sample on the easy item and
its longest on the hard one, so a reader sees what "reasoning tokens" are.
"""

from __future__ import annotations

import math

import pandas as pd

from experiments.pipeline.layout import RunLayout
from experiments.pipeline.report.format import _excludes_zero, _f, _read
from experiments.pipeline.report.seeds import ROLES

TESTED = (
    "**What was tested.** Whether the number of reasoning tokens a model spends on an item tracks "
    "how long people take to solve it (behaviour); whether that cost, and the model's own "
    "upcoming reasoning length, can be read linearly from its residual stream before it starts "
    "reasoning (probes); and whether adding that direction changes how long it reasons "
    "(steering). Teachers were trained with reinforcement learning, students distilled from "
    "them by supervised fine-tuning into their baseline (the pre-distillation model), as in "
    "arXiv 2601.05019, which reports teachers tracking human cost (r̄ = 0.64) and students less "
    "(0.34), often below their own baselines."
)
MAX_TRACE_CHARS = 600


def _ci(est: float, lo: float, hi: float) -> str:
    return f"{_f(est)} [{_f(lo)}, {_f(hi)}]"


def _role_alignment(role: str, rows: list[dict], within: pd.DataFrame) -> str:
    each = "; ".join(
        f"{r[role]} {_ci(r[f'{role}_r'], r[f'{role}_r_lo'], r[f'{role}_r_hi'])}" for r in rows
    )
    defined = [r for r in rows if not math.isnan(r[f"{role}_r"])]
    if not defined:
        return f"- **{role}s**: alignment undefined ({each})."
    positive = sum(
        _excludes_zero(r[f"{role}_r_lo"], r[f"{role}_r_hi"]) and r[f"{role}_r"] > 0 for r in defined
    )
    verdict = (
        "reasoning length tracks human solving time"
        if positive == len(rows)
        else f"reasoning length reliably tracks human solving time in {positive} of {len(rows)} "
        "models"
    )
    mean = sum(r[f"{role}_r"] for r in defined) / len(defined)
    cross = [r[f"{role}_cross"] for r in defined if not math.isnan(r[f"{role}_cross"])]
    models = {r[role] for r in rows}
    tasks = within[within["model"].isin(models)].groupby("task", sort=False)["r"].mean()
    per_task = ", ".join(f"{t} {_f(v)}" for t, v in tasks.items())
    return (
        f"- **{role}s**: {verdict} (mean r̄ = {_f(mean)}; per model r̄ [95% CI]: {each}). "
        f"Within-task r, mean over these models: {per_task}"
        + (f"; cross-task r over task means {_f(sum(cross) / len(cross))}" if cross else "")
        + "."
    )


def _contrast(key: str, test: dict) -> str:
    a, b = key.split("-")
    est = _ci(test["mean"], test["lo"], test["hi"])
    if test["n"] < 2 or math.isnan(test["lo"]):
        return (
            f"- **{a} vs {b}**: r̄_{a} − r̄_{b} = {_f(test['mean'])} (one pair: no test over pairs)."
        )
    if _excludes_zero(test["lo"], test["hi"]):
        word = "more" if test["mean"] > 0 else "less"
        head = f"{a}s track human cost {word} than their {b}s"
    else:
        head = f"no reliable difference between {a}s and {b}s"
    return (
        f"- **{a} vs {b}** ({test['endpoint']}): {head}: r̄_{a} − r̄_{b} = {est} over "
        f"{test['n']} pairs (t-test p = {_f(test['p_t'], 3)})."
    )


def _transfer(run: RunLayout) -> list[str]:
    tr = _read(run.behaviour_file("transfer"))
    needed = {"student", "baseline", "task", "acc_student", "acc_baseline", "p_mcnemar"}
    if tr is None or not needed <= set(tr.columns):
        return []
    pooled = tr[tr["task"] == "__pooled__"]
    parts = [
        f"{r.student} {_f(r.acc_student)} vs {r.baseline} {_f(r.acc_baseline)} "
        f"(McNemar p = {_f(r.p_mcnemar, 3)})"
        for r in pooled.itertuples()
    ]
    return [f"- **accuracy, student vs its baseline**: {'; '.join(parts)}."] if parts else []


def _per_role(summary: dict, triples: list[dict], key: str, fmt) -> str:
    return "; ".join(
        f"{t[role]} {fmt(summary[t[role]][key])}"
        for t in triples
        for role in ROLES
        if key in summary.get(t.get(role), {})
    )


def _mechanism(probes: dict, steering: dict, triples: list[dict], target: str) -> list[str]:
    lines = []
    scores = _per_role(
        probes, triples, target, lambda s: _ci(s.get("score"), s.get("score_lo"), s.get("score_hi"))
    )
    if scores:
        lines.append(
            f"- **probes**: `{target}` read from the residual stream at its best layer, Spearman ρ "
            f"of held-out predictions [95% CI]: {scores} (the probe section gives the trivial "
            "baselines and family-wise p's)."
        )

    def slope(s: dict) -> str:
        reach = f" (α ≤ {s['alpha_max']:g})" if s.get("alpha_max") is not None else ""
        return _ci(s.get("slope"), s.get("lo"), s.get("hi")) + reach

    slopes = _per_role(steering, triples, target, slope)
    if slopes:
        lines.append(
            f"- **steering** along the `{target}` direction, change of mean log(1 + reasoning "
            f"tokens) per unit α [95% CI], over the α range the steering section tested: {slopes} "
            "(the steering section compares it with random directions)."
        )
    return lines


def brief(cfg, run: RunLayout, seeds: dict, probes: dict, steering: dict) -> list[str]:
    """The first screen of the report."""
    items, traces = pd.read_parquet(run.items), pd.read_parquet(run.traces)
    per_task = items.groupby("task", sort=False).size()
    samples = traces.groupby(["model", "item_id"]).size().max()
    triples = [{r: row[r] for r in ROLES} for row in seeds.get("triples", [])]
    in_triples = {m for t in triples for m in t.values()}
    lines = [
        "## In brief",
        "",
        TESTED,
        "",
        f"**Items.** {len(items)} items people solved, in {len(per_task)} tasks ("
        + ", ".join(f"{t} {n}" for t, n in per_task.items())
        + f"); human cost = log of the geometric mean correct-trial solving time (the Items table's human_rt_s); {samples} samples per "
        "item and model.",
        "",
    ]
    models = ", ".join(f"{t['teacher']} → {t['student']} ← {t['baseline']}" for t in triples)
    others = [m for m in traces["model"].unique() if m not in in_triples]
    lines += [
        f"**Models.** {len(triples)} teacher → student ← baseline triple(s): {models or 'none'}"
        + (f"; also {', '.join(others)}" if others else "")
        + ". Model cost = mean over samples of log(1 + reasoning tokens); a model without think "
        "delimiters reasons in everything it writes before its final `Answer:`.",
        "",
        "**Main results** (95% CIs):",
        "",
    ]
    rows = seeds.get("triples", [])
    alignment = _read(run.behaviour_file("alignment"))
    within = (
        alignment[alignment["level"] == "within"]
        if alignment is not None
        else pd.DataFrame(columns=["model", "task", "r"])
    )
    lines += [_role_alignment(role, rows, within) for role in ROLES if rows]
    lines += [_contrast(key, test) for key, test in seeds.get("tests", {}).items()]
    lines += _transfer(run)
    lines += _mechanism(probes, steering, triples, cfg.steering.target)
    return lines + ["", "Details, per task and per model, follow; every number names its CSV.", ""]


def _shown(text: str) -> str:
    text = text if len(text) <= MAX_TRACE_CHARS else text[:MAX_TRACE_CHARS] + " …"
    return "\n".join(["```", text.replace("```", "'''"), "```"])


def example_traces(run: RunLayout) -> list[str]:
    """A short trace on an easy item and a long one on a hard item, per model."""
    items, traces = pd.read_parquet(run.items), pd.read_parquet(run.traces)
    timed = items.dropna(subset=["human_rt_s"])
    if timed.empty or traces.empty:
        return []
    task = timed["task"].value_counts().index[0]
    part = timed[timed["task"] == task].sort_values("human_rt_s")
    easy, hard = part.iloc[0], part.iloc[-1]
    lines = [
        "## Example traces (`traces.parquet`)",
        "",
        f"Task {task}. Easy item `{easy.item_id}` (people: {easy.human_rt_s:.1f} s), hard item "
        f"`{hard.item_id}` (people: {hard.human_rt_s:.1f} s). Prompt of the hard item:",
        "",
        _shown(hard.prompt),
        "",
    ]
    for model, own in traces.groupby("model", sort=False):
        lines += [f"**{model}**", ""]
        for item, pick, word in ((easy, "idxmin", "shortest"), (hard, "idxmax", "longest")):
            samples = own[own["item_id"] == item.item_id]
            if samples.empty:
                continue
            trace = samples.loc[getattr(samples["reasoning_tokens"], pick)()]
            verdict = "correct" if trace.correct else "wrong"
            lines += [
                f"{'easy' if item is easy else 'hard'} item, its {word} sample: "
                f"{int(trace.reasoning_tokens)} reasoning tokens, {verdict}",
                "",
                _shown(str(trace.text)),
                "",
            ]
    return lines
