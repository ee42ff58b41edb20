"""Comparing two models' alignment on the same items: the correlations share the human-cost
variable, so they are dependent. Steiger's (1980) Z and a paired bootstrap over items.

Pooled rows (``task == "__pooled__"``) use the pooled within-task correlation: model and human
costs centred on their task means, then r over all items; the Steiger test then uses
n_eff = N - (k - 1) for k tasks (the k - 1 task contrasts partialled out).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from experiments.behaviour.alignment import MIN_ITEMS, pearson_along, undefined_reason
from experiments.behaviour.costs import paired

COMPARISON_COLUMNS = [
    "model_a",
    "model_b",
    "task",
    "n",
    "r_a",
    "r_b",
    "diff",
    "diff_lo",
    "diff_hi",
    "z",
    "p",
    "test",
    "reason",
]
POOLED = "__pooled__"


def steiger_z(
    r_jk: np.ndarray, r_jh: np.ndarray, r_kh: np.ndarray, n: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Steiger (1980, Psychol. Bull. 87:245, eqs. 3, 10, 14) Z for H0: rho_jk = rho_jh, where
    j is the shared variable, with the pooled r-bar = (r_jk + r_jh) / 2 in the covariance:

        psi = r_kh (1 - 2 rbar^2) - rbar^2 (1 - 2 rbar^2 - r_kh^2) / 2
        s   = psi / (1 - rbar^2)^2
        Z   = (atanh r_jk - atanh r_jh) sqrt(n - 3) / sqrt(2 - 2 s)

    Returns (Z, two-sided p). Hand-written: scipy/statsmodels have no test for dependent
    correlations. Vectorised over its arguments."""
    r_jk, r_jh, r_kh, n = (np.asarray(v, float) for v in (r_jk, r_jh, r_kh, n))
    rbar = (r_jk + r_jh) / 2
    psi = r_kh * (1 - 2 * rbar**2) - 0.5 * rbar**2 * (1 - 2 * rbar**2 - r_kh**2)
    s = psi / (1 - rbar**2) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (np.arctanh(r_jk) - np.arctanh(r_jh)) * np.sqrt(n - 3) / np.sqrt(2 - 2 * s)
    return z, 2 * stats.norm.sf(np.abs(z))


def paired_bootstrap_diff(
    cost_a: np.ndarray,
    cost_b: np.ndarray,
    human: np.ndarray,
    *,
    n_boot: int,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """95% percentile CI of r(cost_a, human) - r(cost_b, human), resampling items (rows kept
    together). Percentile, not BCa: resamples where one side is constant give NaN, which the
    percentile method tolerates and the jackknife of BCa does not."""
    res = stats.bootstrap(
        (cost_a, cost_b, human),
        lambda a, b, h, axis: pearson_along(a, h, axis) - pearson_along(b, h, axis),
        paired=True,
        vectorized=True,
        n_resamples=n_boot,
        method="percentile",
        rng=rng,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def compare_on(
    cost_a: np.ndarray,
    cost_b: np.ndarray,
    human: np.ndarray,
    *,
    n_eff: int,
    n_boot: int,
    rng: np.random.Generator,
) -> dict:
    """r_a, r_b, their difference with a paired-bootstrap CI, Steiger Z and p; NaN + reason when
    either r is undefined."""
    row = {
        "n": len(human),
        "r_a": np.nan,
        "r_b": np.nan,
        "diff": np.nan,
        "diff_lo": np.nan,
        "diff_hi": np.nan,
        "z": np.nan,
        "p": np.nan,
        "test": "steiger1980",
        "reason": "",
    }
    if len(human) == 0:
        row["reason"] = "no overlapping items"
        return row
    reason = undefined_reason(cost_a, human) or undefined_reason(cost_b, human)
    if reason:
        row["reason"] = reason
        return row
    r_a = float(pearson_along(cost_a, human))
    r_b = float(pearson_along(cost_b, human))
    r_ab = float(pearson_along(cost_a, cost_b))
    row.update(r_a=r_a, r_b=r_b, diff=r_a - r_b)
    if n_eff <= MIN_ITEMS:
        row["reason"] = f"n={n_eff}: Steiger's test needs more than {MIN_ITEMS} items"
        return row
    z, p = steiger_z(r_a, r_b, r_ab, n_eff)
    row.update(z=float(z), p=float(p))
    if n_boot > 0:
        row["diff_lo"], row["diff_hi"] = paired_bootstrap_diff(
            cost_a, cost_b, human, n_boot=n_boot, rng=rng
        )
    return row


def centred(frame: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """``cols`` minus their task means (for pooled within-task statistics)."""
    return frame[cols] - frame.groupby("task")[cols].transform("mean")


def task_slices(both: pd.DataFrame):
    """(task, rows, cost_a, cost_b, human, n_eff) for each task of a ``paired`` frame, then the
    pooled slice (``POOLED``: task-centred costs, n_eff = N - (k - 1))."""
    cols = ["cost_a", "cost_b", "human_cost"]
    for task, tb in both.groupby("task", sort=True):
        yield task, tb, *(tb[c].to_numpy() for c in cols), len(tb)
    c = centred(both, cols)
    yield (
        POOLED,
        both,
        *(c[col].to_numpy() for col in cols),
        len(both) - max(both["task"].nunique() - 1, 0),
    )


def compare_models(
    costs: pd.DataFrame, a: str, b: str, *, n_boot: int, rng: np.random.Generator
) -> list[dict]:
    """Per-task and pooled comparison rows of model ``a`` against model ``b``."""
    return [
        {
            "model_a": a,
            "model_b": b,
            "task": task,
            **compare_on(cost_a, cost_b, human, n_eff=n_eff, n_boot=n_boot, rng=rng),
        }
        for task, _, cost_a, cost_b, human, n_eff in task_slices(paired(costs, a, b))
    ]


def comparisons_table(
    costs: pd.DataFrame, pairs: list[tuple[str, str]], *, n_boot: int, rng: np.random.Generator
) -> pd.DataFrame:
    """Comparison rows for every (model_a, model_b) pair."""
    rows = [r for a, b in pairs for r in compare_models(costs, a, b, n_boot=n_boot, rng=rng)]
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
