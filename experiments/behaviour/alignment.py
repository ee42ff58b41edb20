"""Alignment of model cost with human cost (definitions in the README, "Behavioural analysis").

- within-task: Pearson r over the items of one task, 95% CI by Fisher z (``r_lo``, ``r_hi``)
  and by a BCa bootstrap over items (``boot_lo``, ``boot_hi``), Spearman rho, p of r, n items;
- cross-task (``task == "__all__"``): Pearson r over task means, n = number of tasks;
  ``reason`` says when k < 5: a correlation over fewer than 5 task means is not a reliable
  estimate of anything (its CI spans most of [-1, 1]); read it as descriptive;
- mean (``task == "__mean__"``): r-bar, the Fisher-z average of the within-task r's (estimand:
  tanh of the unweighted mean over tasks of atanh rho_task), with the normal-theory CI of an
  unweighted mean of independent z's (``r_lo``, ``r_hi``, ``p``: SE = sqrt(sum 1/(n_t - 3)) / k)
  and a studentised bootstrap over items stratified by task (``boot_lo``, ``boot_hi``,
  ``p_boot`` for H0: r-bar = 0; resampling.py), which does not assume normal costs (3 tasks of
  86 lognormal items: size 0.045, coverage 0.958);
- within-task reliability (reliability.py): ``reliability_model`` (split-half over samples),
  ``reliability_human`` (split-half over trials; NaN without trial data), ``r_disattenuated`` =
  r / sqrt(reliability_model x reliability_human) with a bootstrap-t CI; ``reliability_reason``
  says what is missing (e.g. human reliability unknown: corrected for the model's only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from experiments.behaviour.reliability import N_SPLITS, alignment_stats, halves_for, split_half
from experiments.behaviour.resampling import (
    Stat,
    bootstrap_t,
    fisher,
    pearson,
    positions,
    strata_masks,
    stratified_indices,
    task_mean,
    value,
)

ALIGNMENT_COLUMNS = [
    "model",
    "task",
    "level",
    "n",
    "r",
    "r_lo",
    "r_hi",
    "rho",
    "p",
    "boot_lo",
    "boot_hi",
    "p_boot",
    "reliability_model",
    "reliability_human",
    "r_disattenuated",
    "r_disattenuated_lo",
    "r_disattenuated_hi",
    "reliability_reason",
    "n_censored",
    "reason",
]
MEAN = "__mean__"
MIN_ITEMS = 3
MIN_TASKS_CROSS = 5  # below this many tasks the cross-task r is flagged as unreliable
_R_MAX = 1 - 1e-12  # keeps atanh finite for |r| = 1


def pearson_along(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson r along ``axis`` (vectorised over the other axes; NaN where a side is constant).
    Used as the bootstrap statistic, where scipy.stats.pearsonr's per-call checks and warnings on
    constant resamples would dominate the run time."""
    xm = x - x.mean(axis=axis, keepdims=True)
    ym = y - y.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xm * ym).sum(axis=axis) / np.sqrt((xm**2).sum(axis=axis) * (ym**2).sum(axis=axis))


def undefined_reason(x: np.ndarray, y: np.ndarray, *, what: str = "items") -> str:
    """Why r cannot be computed on (x, y), or "" when it can."""
    if len(x) < MIN_ITEMS:
        return f"only {len(x)} {what}; r needs at least {MIN_ITEMS}"
    if np.ptp(x) == 0:
        return "model cost identical on every one of the " + what + "; r undefined"
    if np.ptp(y) == 0:
        return "human cost identical on every one of the " + what + "; r undefined"
    return ""


def correlate(
    x: np.ndarray, y: np.ndarray, *, n_boot: int, rng: np.random.Generator, what: str = "items"
) -> dict:
    """n, r (scipy pearsonr) with Fisher-z and BCa-bootstrap 95% CIs, Spearman rho, p, reason."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    row = {
        "n": len(x),
        "r": np.nan,
        "r_lo": np.nan,
        "r_hi": np.nan,
        "rho": np.nan,
        "p": np.nan,
        "boot_lo": np.nan,
        "boot_hi": np.nan,
        "reason": undefined_reason(x, y, what=what),
    }
    if row["reason"]:
        return row
    res = stats.pearsonr(x, y)
    row.update(
        r=float(res.statistic), p=float(res.pvalue), rho=float(stats.spearmanr(x, y).statistic)
    )
    if len(x) > MIN_ITEMS:
        ci = res.confidence_interval(0.95)
        row.update(r_lo=float(ci.low), r_hi=float(ci.high))
    else:
        row["reason"] = f"n={len(x)}: the Fisher-z CI needs more than {MIN_ITEMS} {what}"
    if n_boot > 0 and len(x) > MIN_ITEMS:
        boot = stats.bootstrap(
            (x, y),
            lambda a, b, axis: pearson_along(a, b, axis),
            paired=True,
            vectorized=True,
            n_resamples=n_boot,
            method="BCa",
            rng=rng,
        )
        row.update(
            boot_lo=float(boot.confidence_interval.low),
            boot_hi=float(boot.confidence_interval.high),
        )
        if not (np.isfinite(row["boot_lo"]) and np.isfinite(row["boot_hi"])):
            row["reason"] = (
                f"n={len(x)}: the BCa bootstrap CI is undefined (too few distinct "
                "resamples); the Fisher-z CI stands"
            )
    return row


def fisher_mean(r: np.ndarray, n: np.ndarray) -> dict:
    """r-bar = tanh(mean atanh r) over k tasks, 95% CI and p from SE = sqrt(sum 1/(n-3)) / k."""
    r, n = np.asarray(r, float), np.asarray(n, float)
    keep = np.isfinite(r) & (n > MIN_ITEMS)
    k = int(keep.sum())
    if k == 0:
        return {
            "n": 0,
            "r": np.nan,
            "r_lo": np.nan,
            "r_hi": np.nan,
            "p": np.nan,
            "reason": "no task with a defined within-task r (n > 3)",
        }
    z = np.arctanh(np.clip(r[keep], -_R_MAX, _R_MAX))
    zbar = z.mean()
    se = np.sqrt(np.sum(1.0 / (n[keep] - 3))) / k
    return {
        "n": k,
        "r": float(np.tanh(zbar)),
        "r_lo": float(np.tanh(zbar - 1.959963984540054 * se)),
        "r_hi": float(np.tanh(zbar + 1.959963984540054 * se)),
        "p": float(2 * stats.norm.sf(abs(zbar / se))),
        "reason": "",
    }


def zbar_stat(cost: np.ndarray, human: np.ndarray, parts: list[np.ndarray]) -> Stat:
    """Unweighted mean over tasks of atanh r(cost, human), resampled on the concatenated
    ``parts`` (each task's rows)."""
    stats_ = [fisher(pearson(cost, human, [np.ones(len(p), bool)])) for p in parts]
    return task_mean(list(zip(positions(parts), stats_, strict=True)), sum(map(len, parts)))


def _reliability(cost, human, cols, boot, halves_model, halves_human) -> dict:
    """Reliability columns of one within-task row (rows ``cols``, resamples ``boot``)."""
    if halves_model is None:
        return {"reliability_reason": "model reliability needs >= 2 samples of every item"}
    one = [np.ones(len(cols), bool)]
    _, dis = alignment_stats(cost, human, one, halves_model, halves_human)
    res = bootstrap_t(dis, cols, boot[:, cols], one, cells_per_row=6 * N_SPLITS)
    rel = [
        np.nan if h is None else value(split_half(*h, one), cols)
        for h in (halves_model, halves_human)
    ]
    note = (
        "human reliability unknown (no trial-level data: the Items table holds item aggregates; "
        "pass human_trials): r_disattenuated corrects for the model's sampling noise only"
    )
    return {
        "reliability_model": rel[0],
        "reliability_human": rel[1],
        "r_disattenuated": res["est"],
        "r_disattenuated_lo": res["lo"],
        "r_disattenuated_hi": res["hi"],
        "reliability_reason": "" if halves_human is not None else note,
    }


def alignment_table(
    costs: pd.DataFrame,
    *,
    halves=None,
    human_halves=None,
    n_boot: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Within-task, cross-task and mean alignment rows for every model in ``costs``; ``halves``
    / ``human_halves`` are split halves (reliability.model_halves / human_halves) or None."""
    rows = []
    for model, mc in costs.groupby("model", sort=True):
        mc = mc.reset_index(drop=True)
        tasks = mc["task"].to_numpy()
        cost, human = mc["cost"].to_numpy(float), mc["human_cost"].to_numpy(float)
        boot = stratified_indices(tasks, n_boot, rng)
        items = mc["item_id"].to_numpy()
        hm, hh = halves_for(halves, model, items), halves_for(human_halves, None, items)
        within, parts = [], []
        for task in sorted(set(tasks)):
            cols = np.flatnonzero(tasks == task)
            row = correlate(cost[cols], human[cols], n_boot=n_boot, rng=rng)
            row.update(
                model=model,
                task=task,
                level="within",
                n_censored=int(mc["n_censored"].to_numpy()[cols].sum()),
            )
            if np.isfinite(row["r"]):
                row.update(_reliability(cost, human, cols, boot, hm, hh))
                if row["n"] > MIN_ITEMS:
                    parts.append(cols)
            rows.append(row)
            within.append(row)
        means = mc.groupby("task")[["cost", "human_cost"]].mean()
        row = correlate(
            means["cost"].to_numpy(),
            means["human_cost"].to_numpy(),
            n_boot=n_boot,
            rng=rng,
            what="tasks",
        )
        if len(means) < MIN_TASKS_CROSS:
            flag = (
                f"k = {len(means)} tasks: a correlation over fewer than {MIN_TASKS_CROSS} task "
                "means is unreliable; descriptive only"
            )
            row["reason"] = "; ".join(x for x in (flag, row["reason"]) if x)
        row.update(
            model=model, task="__all__", level="cross", n_censored=int(mc["n_censored"].sum())
        )
        rows.append(row)
        row = fisher_mean(np.array([w["r"] for w in within]), np.array([w["n"] for w in within]))
        row.update(
            model=model,
            task=MEAN,
            level="mean",
            rho=np.nan,
            n_censored=int(mc["n_censored"].sum()),
        )
        if parts:
            cols = np.concatenate(parts)
            res = bootstrap_t(
                zbar_stat(cost, human, parts),
                cols,
                boot[:, cols],
                strata_masks(tasks[cols]),
            )
            row.update(boot_lo=np.tanh(res["lo"]), boot_hi=np.tanh(res["hi"]), p_boot=res["p"])
        rows.append(row)
    return pd.DataFrame(rows, columns=ALIGNMENT_COLUMNS)
