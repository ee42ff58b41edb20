"""Linear Inflation Law: how a student's length scales with a reference model's (teacher or
baseline), item by item.

Per item, x = the reference's mean reasoning tokens, y = the student's. Reported per task and
pooled (``__pooled__``):
- ``slope`` with 95% CI: OLS y = a + b x (statsmodels) with HC3 heteroskedasticity-robust
  standard errors: token counts vary multiplicatively, so the spread of y grows with x and the
  classical OLS interval is too narrow. The pooled row has one intercept per task (``intercept``
  NaN): the within-task slope, which lies between the task slopes (without task intercepts a
  between-task difference in length made it fall outside both);
- ``ratio_gmean`` with 95% CI: per task exp(mean log(y / x)), t interval on the mean log ratio;
  items where either model has 0 mean tokens are left out of the ratio (``n_zero``). Pooled row:
  the random-effects pooled ratio over tasks (estimand: exp of the mean over the population of
  tasks of the task's mean log ratio): DerSimonian-Laird between-task variance (``tau_logratio``
  = its square root, on the log scale) with the Hartung-Knapp-Sidik-Jonkman t(k - 1) CI, which
  keeps its coverage with few tasks (at 2 tasks it is very wide, as it must be);
- ``p_ratio_equal`` (pooled): Welch's heteroskedastic one-way ANOVA of the log ratios by task
  (statsmodels ``anova_oneway``), H0: the same ratio in every task;
- ``p_equivalent_tasks`` (pooled): equivalence of the task ratios, intersection-union TOST: every
  pair of task ratios within a factor ``EQUIVALENCE_RATIO`` (1.10) of each other (Welch t per
  pair; p = the largest pairwise TOST p). A small p supports "the same multiplier in every task";
  a large ``p_ratio_equal`` does not;
- ``logratio_vs_difficulty_slope`` with CI and ``p_constant``: OLS log(y / x) = c_task + d *
  human cost, one intercept per task (in the pooled row: d is the within-task slope, so tasks
  that differ in ratio and in difficulty do not read as a non-constant multiplier); p_constant
  is the p of H0: d = 0 (a small p: the multiplier changes with difficulty);
- ``p_equivalent``: TOST of |d| x SD(human cost within task) < log(1.10): the multiplier changes
  by less than 10% per SD of human difficulty. A small p supports a constant multiplier;
  ``p_constant`` > .05 alone does not;
- measured (``benchmarks/behaviour_stats.py``, 150 items per task, lognormal noise, 300
  replications): ``p_ratio_equal`` size 0.040 (2 tasks) / 0.053 (3 tasks), power 1.00 at 2.0x vs
  3.0x; pooled ratio CI coverage 0.943 (2 and 3 equal tasks), 0.963 (5 tasks, tau 0.15); TOST
  size at the bound: ``p_equivalent`` 0.050 / 0.060, ``p_equivalent_tasks`` 0.037;
- ``censored_student`` / ``censored_reference``: share of each model's samples cut at the budget
  (counted at the budget): censoring caps y (or x), which biases the ratio toward 1 and the
  slope toward 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.oneway import anova_oneway

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
    "p_equivalent",
    "tau_logratio",
    "p_ratio_equal",
    "p_equivalent_tasks",
    "censored_student",
    "censored_reference",
    "n_zero",
    "reason",
]
EQUIVALENCE_RATIO = 1.10
_DELTA = np.log(EQUIVALENCE_RATIO)


def _ols(x, y, robust: bool, strata):
    design = sm.add_constant(np.asarray(x, float), has_constant="add")
    if strata is not None:
        dummies = pd.get_dummies(np.asarray(strata), drop_first=True, dtype=float).to_numpy()
        design = np.column_stack([design, dummies])
    return sm.OLS(np.asarray(y, float), design).fit(cov_type="HC3" if robust else "nonrobust")


def ols_slope(
    x: np.ndarray, y: np.ndarray, *, robust: bool = False, strata: pd.Series | None = None
) -> tuple[float, float, float, float, float]:
    """(intercept, slope, slope_lo, slope_hi, p of slope) of OLS y ~ 1 + x, 95% CI; ``robust``
    uses HC3 standard errors; ``strata`` (one label per row) adds an intercept per stratum, so
    the slope is the within-stratum one."""
    fit = _ols(x, y, robust, strata)
    lo, hi = fit.conf_int(0.05)[1]
    return float(fit.params[0]), float(fit.params[1]), float(lo), float(hi), float(fit.pvalues[1])


def tost_p(est: float, se: float, df: float, delta: float) -> float:
    """Two one-sided t tests of H0: |theta| >= delta (p < .05: |theta| < delta shown)."""
    return float(max(stats.t.sf((est + delta) / se, df), stats.t.cdf((est - delta) / se, df)))


def random_effects(m: np.ndarray, v: np.ndarray) -> tuple[float, float, float, float]:
    """(pooled mean, CI low, CI high, tau) of DerSimonian-Laird random effects with the HKSJ t(k -
    1) interval. By hand: statsmodels 0.15 ``combine_effects(method_re="chi2")`` does not
    truncate tau^2 at 0 and returns NaN when Q < k - 1 (tested against it where tau^2 > 0)."""
    k, w = len(m), 1 / v
    q = np.sum(w * (m - np.sum(w * m) / w.sum()) ** 2)
    tau2 = max(0.0, (q - (k - 1)) / (w.sum() - np.sum(w**2) / w.sum()))
    ws = 1 / (v + tau2)
    mu = np.sum(ws * m) / ws.sum()
    se = np.sqrt(np.sum(ws * (m - mu) ** 2) / ((k - 1) * ws.sum()))
    half = stats.t.ppf(0.975, k - 1) * se
    return float(mu), float(mu - half), float(mu + half), float(np.sqrt(tau2))


def task_ratios(logratio: np.ndarray, tasks: np.ndarray) -> dict:
    """Random-effects ratio, Welch test of equal ratios and the IUT equivalence p over tasks."""
    groups = [logratio[tasks == t] for t in sorted(set(tasks))]
    if min(len(g) for g in groups) < 2:
        return {"reason": "a task has fewer than 2 items with a ratio; task ratios not compared"}
    m = np.array([g.mean() for g in groups])
    v = np.array([g.var(ddof=1) / len(g) for g in groups])
    mu, lo, hi, tau = random_effects(m, v)
    tost = []
    for i in range(len(groups)):
        for j in range(i + 1, len(groups)):
            vi, vj, ni, nj = v[i], v[j], len(groups[i]), len(groups[j])
            df = (vi + vj) ** 2 / (vi**2 / (ni - 1) + vj**2 / (nj - 1))
            tost.append(tost_p(m[i] - m[j], np.sqrt(vi + vj), df, _DELTA))
    return {
        "ratio_gmean": np.exp(mu),
        "ratio_lo": np.exp(lo),
        "ratio_hi": np.exp(hi),
        "tau_logratio": tau,
        "p_ratio_equal": float(anova_oneway(groups, use_var="unequal").pvalue),
        "p_equivalent_tasks": max(tost),
    }


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
    pooled = frame["task"].nunique() > 1
    strata = frame["task"] if pooled else None
    row["intercept"], row["slope"], row["slope_lo"], row["slope_hi"], _ = ols_slope(
        x, y, robust=True, strata=strata
    )
    if pooled:
        row["intercept"] = np.nan
    logratio = np.log(y[pos]) - np.log(x[pos])
    if pos.sum() < 3:
        row["reason"] = "fewer than 3 items with tokens > 0 in both models; ratio not reported"
        return row
    kept = frame[pos]
    if pooled:
        row.update(task_ratios(logratio, kept["task"].to_numpy()))
    else:
        fit = sm.OLS(logratio, np.ones_like(logratio)).fit()
        lo, hi = fit.conf_int(0.05)[0]
        row.update(
            ratio_gmean=float(np.exp(fit.params[0])),
            ratio_lo=float(np.exp(lo)),
            ratio_hi=float(np.exp(hi)),
        )
    spread = centred(kept, ["human_cost"]).to_numpy()
    if np.ptp(spread) == 0:
        row["reason"] = (
            "human cost identical on every item of a task; constant-multiplier test undefined"
        )
        return row
    fit = _ols(kept["human_cost"], logratio, False, kept["task"])
    (d_lo, d_hi), d, se = fit.conf_int(0.05)[1], float(fit.params[1]), float(fit.bse[1])
    row.update(
        logratio_vs_difficulty_slope=d,
        lr_slope_lo=float(d_lo),
        lr_slope_hi=float(d_hi),
        p_constant=float(fit.pvalues[1]),
        p_equivalent=tost_p(d, se, fit.df_resid, _DELTA / spread.std(ddof=1)),
    )
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
