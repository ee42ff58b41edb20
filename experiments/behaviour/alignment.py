"""Alignment of model cost with human cost (definitions in the README, "Behavioural analysis").

- within-task: Pearson r over the items of one task, 95% CI by Fisher z (``r_lo``, ``r_hi``)
  and by a BCa bootstrap over items (``boot_lo``, ``boot_hi``), Spearman rho, p of r, n items;
- cross-task (``task == "__all__"``): Pearson r over task means, n = number of tasks;
- mean (``task == "__mean__"``): r-bar, the Fisher-z average of the within-task r's, with the CI
  of an unweighted mean of independent z's (SE = sqrt(sum 1/(n_t - 3)) / k).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

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
    "n_censored",
    "reason",
]
MIN_ITEMS = 3
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


def alignment_table(costs: pd.DataFrame, *, n_boot: int, rng: np.random.Generator) -> pd.DataFrame:
    """Within-task, cross-task and mean alignment rows for every model in ``costs``."""
    rows = []
    for model, mc in costs.groupby("model", sort=True):
        within = []
        for task, tc in mc.groupby("task", sort=True):
            row = correlate(
                tc["cost"].to_numpy(), tc["human_cost"].to_numpy(), n_boot=n_boot, rng=rng
            )
            row.update(
                model=model, task=task, level="within", n_censored=int(tc["n_censored"].sum())
            )
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
        row.update(
            model=model, task="__all__", level="cross", n_censored=int(mc["n_censored"].sum())
        )
        rows.append(row)
        row = fisher_mean(np.array([w["r"] for w in within]), np.array([w["n"] for w in within]))
        row.update(
            model=model,
            task="__mean__",
            level="mean",
            rho=np.nan,
            boot_lo=np.nan,
            boot_hi=np.nan,
            n_censored=int(mc["n_censored"].sum()),
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=ALIGNMENT_COLUMNS)
