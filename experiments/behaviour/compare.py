"""Comparing two models' alignment with human cost on the same items (teacher vs student vs
baseline). The two correlations share the human variable, so they are dependent.

Rows per (model_a, model_b): one per task, ``__pooled__`` (model and human costs centred on
their task means, then r over all items: the pooled within-task r) and ``__mean__`` (r-bar: the
Fisher-z mean of the within-task r's over the tasks with a defined r and more than 3 items). The
``__mean__`` row of each teacher-student pair is the primary endpoint (``endpoint ==
"primary"``): the teacher - student r-bar difference.

- ``diff`` = r_a - r_b; ``diff_lo``, ``diff_hi``, ``p_boot``: studentised paired bootstrap over
  items (resampling.py), resampled within tasks, task means and r's re-estimated per resample.
  Size at alpha = .05, H0 true, n = 256 (``benchmarks/behaviour_stats.py``): 0.046 with
  lognormal costs, 0.054 under t(5), where Steiger's Z has 0.116 and 0.214;
- ``z_steiger``, ``p_steiger``: Steiger's (1980) Z, secondary (normal theory; in pooled rows
  with n_eff = N - (k - 1)); NaN for ``__mean__``;
- ``reliability_a`` / ``_b``: split-half reliability of each model's cost over samples and
  ``r_dis_a`` / ``_b`` the disattenuated r's (reliability.py); ``diff_disattenuated`` with
  bootstrap-t CI and ``p_disattenuated`` (the ``__mean__`` row: the mean over tasks of the
  per-task disattenuated differences). A raw difference with a disattenuated one near 0 can be
  a difference in sampling reliability, not in policy. Planted case (same item policy, r 0.71,
  4 samples of per-sample noise SD 0.3 vs 1.0, n = 256, 600 replications): the raw difference
  is +0.066 (MC SE 0.001) and p_boot < .05 in 83% of runs; the disattenuated difference has
  bias -0.0009 (MC SE 0.0010), size 0.057 and CI coverage 0.933 (1,000 replications: bias
  -0.0007 (0.0008), size 0.048, coverage 0.948);
- one task: the ``__pooled__`` and ``__mean__`` rows repeat the task row (one test);
- ``p_holm``: Holm-adjusted ``p_boot`` over the behaviour family (multiplicity.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from experiments.behaviour.alignment import MEAN, MIN_ITEMS, undefined_reason, zbar_stat
from experiments.behaviour.costs import paired
from experiments.behaviour.reliability import N_SPLITS, alignment_stats, halves_for, split_half
from experiments.behaviour.resampling import (
    bootstrap_t,
    difference,
    pearson,
    positions,
    strata_masks,
    stratified_indices,
    tanh,
    task_mean,
    value,
)

COMPARISON_COLUMNS = [
    "model_a",
    "model_b",
    "task",
    "endpoint",
    "n",
    "r_a",
    "r_b",
    "diff",
    "diff_lo",
    "diff_hi",
    "p_boot",
    "p_holm",
    "z_steiger",
    "p_steiger",
    "reliability_a",
    "reliability_b",
    "r_dis_a",
    "r_dis_b",
    "diff_disattenuated",
    "diff_disattenuated_lo",
    "diff_disattenuated_hi",
    "p_disattenuated",
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


def centred(frame: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """``cols`` minus their task means (for pooled within-task statistics)."""
    return frame[cols] - frame.groupby("task")[cols].transform("mean")


class PairSample:
    """The shared items of two models as arrays, with one stratified set of bootstrap resamples
    that every row of the pair uses (so the rows of a pair are computed on the same resamples)."""

    def __init__(self, both: pd.DataFrame, halves, human_halves, a: str, b: str, n_boot, rng):
        self.tasks = both["task"].to_numpy()
        self.a, self.b = both["cost_a"].to_numpy(float), both["cost_b"].to_numpy(float)
        self.human = both["human_cost"].to_numpy(float)
        self.boot = stratified_indices(self.tasks, n_boot, rng)
        items = both["item_id"].to_numpy()
        self.halves_a = halves_for(halves, a, items)
        self.halves_b = halves_for(halves, b, items)
        self.halves_h = halves_for(human_halves, None, items)

    def slices(self):
        """(task, positions, strata masks, n_eff) per task."""
        for task in sorted(set(self.tasks)):
            cols = np.flatnonzero(self.tasks == task)
            yield task, cols, [np.ones(len(cols), bool)], len(cols)

    def pooled_slice(self):
        """The pooled slice: all items, strata = tasks, n_eff = N - (k - 1)."""
        k = len(set(self.tasks))
        return np.arange(len(self.tasks)), strata_masks(self.tasks), len(self.tasks) - k + 1

    def alignment(self, cost: np.ndarray, halves, masks):
        """(r statistic, disattenuated-r statistic or None) of ``cost`` with human cost."""
        return alignment_stats(cost, self.human, masks, halves, self.halves_h)


def _boot(stat, cols, sample: PairSample, masks, *, cells: int = 1) -> dict:
    return bootstrap_t(stat, cols, sample.boot[:, cols], masks, cells_per_row=cells)


def _slice_row(s: PairSample, cols: np.ndarray, masks, n_eff: int) -> dict:
    a, b, h = s.a[cols], s.b[cols], s.human[cols]
    row = {"n": len(cols)}
    reason = undefined_reason(a, h) or undefined_reason(b, h)
    if reason:
        return row | {"reason": reason}
    r_a, r_b = pearson(s.a, s.human, masks), pearson(s.b, s.human, masks)
    raw = _boot(difference(r_a, r_b), cols, s, masks)
    row.update(
        r_a=value(r_a, cols),
        r_b=value(r_b, cols),
        diff=raw["est"],
        diff_lo=raw["lo"],
        diff_hi=raw["hi"],
        p_boot=raw["p"],
        reason="",
    )
    if n_eff > MIN_ITEMS:
        z, p = steiger_z(row["r_a"], row["r_b"], value(pearson(s.a, s.b, masks), cols), n_eff)
        row.update(z_steiger=float(z), p_steiger=float(p))
    if s.halves_a is None or s.halves_b is None:
        return row | {"reason": "reliability needs >= 2 samples of every item of both models"}
    _, dis_a = s.alignment(s.a, s.halves_a, masks)
    _, dis_b = s.alignment(s.b, s.halves_b, masks)
    dis = _boot(difference(dis_a, dis_b), cols, s, masks, cells=6 * N_SPLITS)
    return row | {
        "reliability_a": value(split_half(*s.halves_a, masks), cols),
        "reliability_b": value(split_half(*s.halves_b, masks), cols),
        "r_dis_a": value(dis_a, cols),
        "r_dis_b": value(dis_b, cols),
        "diff_disattenuated": dis["est"],
        "diff_disattenuated_lo": dis["lo"],
        "diff_disattenuated_hi": dis["hi"],
        "p_disattenuated": dis["p"],
    }


def _mean_row(s: PairSample) -> dict:
    """r-bar_a - r-bar_b over the tasks where both r's are defined, stratified bootstrap-t."""
    tasks = [
        (t, cols)
        for t, cols, _, _ in s.slices()
        if len(cols) > MIN_ITEMS
        and not (
            undefined_reason(s.a[cols], s.human[cols]) or undefined_reason(s.b[cols], s.human[cols])
        )
    ]
    if not tasks:
        return {"n": 0, "reason": "no task with both r's defined (n > 3)"}
    parts = [c for _, c in tasks]
    cols = np.concatenate(parts)
    masks = strata_masks(s.tasks[cols])

    def rbar(cost):
        return tanh(zbar_stat(cost, s.human, parts))

    raw = _boot(difference(rbar(s.a), rbar(s.b)), cols, s, masks)
    left_out = sorted(set(s.tasks) - {t for t, _ in tasks})
    row = {
        "n": len(cols),
        "r_a": value(rbar(s.a), cols),
        "r_b": value(rbar(s.b), cols),
        "diff": raw["est"],
        "diff_lo": raw["lo"],
        "diff_hi": raw["hi"],
        "p_boot": raw["p"],
        "reason": f"tasks left out (r undefined or <= {MIN_ITEMS} items): {left_out}"
        if left_out
        else "",
    }
    if s.halves_a is None or s.halves_b is None:
        return row
    one = [[np.ones(len(p), bool)] for p in parts]
    dis = {
        m: task_mean(
            [
                (q, s.alignment(cost, halves, o)[1])
                for q, o in zip(positions(parts), one, strict=True)
            ],
            len(cols),
        )
        for m, cost, halves in (("a", s.a, s.halves_a), ("b", s.b, s.halves_b))
    }
    res = _boot(difference(dis["a"], dis["b"]), cols, s, masks, cells=6 * N_SPLITS)
    return row | {
        "r_dis_a": value(dis["a"], cols),
        "r_dis_b": value(dis["b"], cols),
        "diff_disattenuated": res["est"],
        "diff_disattenuated_lo": res["lo"],
        "diff_disattenuated_hi": res["hi"],
        "p_disattenuated": res["p"],
    }


def compare_models(
    costs: pd.DataFrame,
    a: str,
    b: str,
    *,
    halves=None,
    human_halves=None,
    n_boot: int,
    rng: np.random.Generator,
) -> list[dict]:
    """Per-task, pooled and r-bar comparison rows of model ``a`` against model ``b``."""
    both = paired(costs, a, b)
    if both.empty:
        return [
            {"model_a": a, "model_b": b, "task": POOLED, "n": 0, "reason": "no overlapping items"}
        ]
    s = PairSample(both, halves, human_halves, a, b, n_boot, rng)
    rows = [
        {"task": t, **_slice_row(s, cols, masks, n_eff)} for t, cols, masks, n_eff in s.slices()
    ]
    if len(rows) == 1:  # one task: the pooled and r-bar rows are the task row itself
        rows += [rows[0] | {"task": POOLED}, rows[0] | {"task": MEAN}]
    else:
        rows.append({"task": POOLED, **_slice_row(s, *s.pooled_slice())})
        rows.append({"task": MEAN, **_mean_row(s)})
    return [{"model_a": a, "model_b": b, **r} for r in rows]


def comparisons_table(
    costs: pd.DataFrame,
    pairs: list[tuple[str, str]],
    *,
    primary: set[tuple[str, str]] = frozenset(),
    halves=None,
    human_halves=None,
    n_boot: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Comparison rows for every (model_a, model_b) pair; the ``__mean__`` row of a pair in
    ``primary`` (teacher, student) is marked ``endpoint == "primary"``."""
    rows = [
        r
        for a, b in pairs
        for r in compare_models(
            costs, a, b, halves=halves, human_halves=human_halves, n_boot=n_boot, rng=rng
        )
    ]
    out = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    is_primary = [
        (a, b) in primary and t == MEAN for a, b, t in zip(out.model_a, out.model_b, out.task)
    ]
    out["endpoint"] = np.where(is_primary, "primary", "secondary")
    return out
