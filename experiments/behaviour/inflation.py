"""Linear Inflation Law: how a student's length scales with a reference model's (teacher or
baseline), item by item.

Per item, x = the reference's mean reasoning tokens, y = the student's. Reported per task and
pooled (``__pooled__``):
- ``slope`` with 95% CI: OLS y = a + b x (statsmodels) with HC3 heteroskedasticity-robust
  standard errors: token counts vary multiplicatively, so the spread of y grows with x and the
  classical OLS interval is too narrow;
- ``ratio_gmean`` with 95% CI: exp(mean log(y / x)), t interval on the mean log ratio; items
  where either model has 0 mean tokens are left out of the ratio (``n_zero``);
- ``logratio_vs_difficulty_slope`` with CI and ``p_constant``: OLS log(y / x) = c + d * human
  cost; d = 0 means a constant multiplier whatever the difficulty, p_constant is the p of d.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm

from experiments.behaviour.compare import POOLED
from experiments.behaviour.costs import paired

INFLATION_COLUMNS = [
    "student",
    "reference",
    "task",
    "n",
    "slope",
    "slope_lo",
    "slope_hi",
    "intercept",
    "ratio_gmean",
    "ratio_lo",
    "ratio_hi",
    "logratio_vs_difficulty_slope",
    "lr_slope_lo",
    "lr_slope_hi",
    "p_constant",
    "n_zero",
    "reason",
]


def ols_slope(
    x: np.ndarray, y: np.ndarray, *, robust: bool = False
) -> tuple[float, float, float, float, float]:
    """(intercept, slope, slope_lo, slope_hi, p of slope) of OLS y ~ 1 + x, 95% CI; ``robust``
    uses HC3 standard errors."""
    design = sm.add_constant(np.asarray(x, float), has_constant="add")
    fit = sm.OLS(np.asarray(y, float), design).fit(cov_type="HC3" if robust else "nonrobust")
    lo, hi = fit.conf_int(0.05)[1]
    return float(fit.params[0]), float(fit.params[1]), float(lo), float(hi), float(fit.pvalues[1])


def inflation_row(frame: pd.DataFrame) -> dict:
    """Inflation statistics on the shared items in ``frame`` (output of costs.paired, a =
    student, b = reference)."""
    x, y = frame["mean_tokens_b"].to_numpy(float), frame["mean_tokens_a"].to_numpy(float)
    pos = (x > 0) & (y > 0)
    row = {"n": len(frame), "n_zero": int((~pos).sum()), "reason": ""}
    if len(frame) < 3 or np.ptp(x) == 0:
        row["reason"] = (
            "fewer than 3 shared items"
            if len(frame) < 3
            else "reference tokens identical on every item; slope undefined"
        )
        return row
    row["intercept"], row["slope"], row["slope_lo"], row["slope_hi"], _ = ols_slope(
        x, y, robust=True
    )
    logratio = np.log(y[pos]) - np.log(x[pos])
    if pos.sum() < 3:
        row["reason"] = "fewer than 3 items with tokens > 0 in both models; ratio not reported"
        return row
    fit = sm.OLS(logratio, np.ones_like(logratio)).fit()
    lo, hi = fit.conf_int(0.05)[0]
    row.update(
        ratio_gmean=float(np.exp(fit.params[0])),
        ratio_lo=float(np.exp(lo)),
        ratio_hi=float(np.exp(hi)),
    )
    human = frame["human_cost"].to_numpy(float)[pos]
    if np.ptp(human) == 0:
        row["reason"] = "human cost identical on every item; constant-multiplier test undefined"
        return row
    _, d, d_lo, d_hi, p = ols_slope(human, logratio)
    row.update(logratio_vs_difficulty_slope=d, lr_slope_lo=d_lo, lr_slope_hi=d_hi, p_constant=p)
    return row


def inflation_table(costs: pd.DataFrame, pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """Rows for every (student, reference) pair, per task and pooled."""
    rows = []
    for student, reference in pairs:
        both = paired(costs, student, reference)
        for task, tb in both.groupby("task", sort=True):
            rows.append(
                {"student": student, "reference": reference, "task": task, **inflation_row(tb)}
            )
        row = inflation_row(both) if len(both) else {"n": 0, "reason": "no overlapping items"}
        rows.append({"student": student, "reference": reference, "task": POOLED, **row})
    return pd.DataFrame(rows, columns=INFLATION_COLUMNS)
