"""Linear Inflation Law: how a student's length scales with a reference model's (teacher or
baseline), item by item.

Per item, x = the reference's mean reasoning tokens, y = the student's. Reported per task and
pooled (``__pooled__``):
- ``slope`` with 95% CI: OLS y = a + b x (statsmodels) with HC3 heteroskedasticity-robust
  standard errors: token counts vary multiplicatively, so the spread of y grows with x and the
  classical OLS interval is too narrow;
- ``ratio_gmean`` with 95% CI: exp(mean log(y / x)), t interval on the mean log ratio; items
  where either model has 0 mean tokens are left out of the ratio (``n_zero``);
- ``logratio_vs_difficulty_slope`` with CI and ``p_constant``: OLS log(y / x) = c_task + d *
  human cost, one intercept per task (in the pooled row: d is the within-task slope, so tasks
  that differ in ratio and in difficulty do not read as a non-constant multiplier); d = 0 means a
  constant multiplier whatever the difficulty, p_constant is the p of d;
- ``censored_student`` / ``censored_reference``: share of each model's samples cut at the budget
  (counted at the budget): censoring caps y (or x), which biases the ratio toward 1 and the
  slope toward 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm

from experiments.behaviour.compare import POOLED, centred
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
    "censored_student",
    "censored_reference",
    "n_zero",
    "reason",
]


def ols_slope(
    x: np.ndarray, y: np.ndarray, *, robust: bool = False, strata: pd.Series | None = None
) -> tuple[float, float, float, float, float]:
    """(intercept, slope, slope_lo, slope_hi, p of slope) of OLS y ~ 1 + x, 95% CI; ``robust``
    uses HC3 standard errors; ``strata`` (one label per row) adds an intercept per stratum, so
    the slope is the within-stratum one."""
    design = sm.add_constant(np.asarray(x, float), has_constant="add")
    if strata is not None:
        dummies = pd.get_dummies(np.asarray(strata), drop_first=True, dtype=float).to_numpy()
        design = np.column_stack([design, dummies])
    fit = sm.OLS(np.asarray(y, float), design).fit(cov_type="HC3" if robust else "nonrobust")
    lo, hi = fit.conf_int(0.05)[1]
    return float(fit.params[0]), float(fit.params[1]), float(lo), float(hi), float(fit.pvalues[1])


def inflation_row(frame: pd.DataFrame) -> dict:
    """Inflation statistics on the shared items in ``frame`` (output of costs.paired, a =
    student, b = reference)."""
    x, y = frame["mean_tokens_b"].to_numpy(float), frame["mean_tokens_a"].to_numpy(float)
    pos = (x > 0) & (y > 0)
    row = {
        "n": len(frame),
        "n_zero": int((~pos).sum()),
        "reason": "",
        "censored_student": frame["n_censored_a"].sum() / frame["n_samples_a"].sum(),
        "censored_reference": frame["n_censored_b"].sum() / frame["n_samples_b"].sum(),
    }
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
    kept = frame[pos]
    if np.ptp(centred(kept, ["human_cost"]).to_numpy()) == 0:
        row["reason"] = (
            "human cost identical on every item of a task; constant-multiplier test undefined"
        )
        return row
    _, d, d_lo, d_hi, p = ols_slope(kept["human_cost"], logratio, strata=kept["task"])
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
