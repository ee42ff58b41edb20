"""Negative Transfer: a distilled student against its own pre-distillation baseline.

- accuracy: ``acc_*`` = mean over the shared items of each item's share of correct samples;
  ``acc_diff`` = acc_student - acc_baseline, the mean of the per-item paired differences, with a
  studentised paired bootstrap over items (resampled within tasks for ``__pooled__``): 95% CI
  ``acc_diff_lo`` / ``acc_diff_hi`` and ``p_acc`` (H0: equal mean item accuracy). The test is of
  the printed quantity. Measured (``benchmarks/behaviour_stats.py``, n = 200 items, 4 samples,
  3,000 replications): size 0.049 when both models share each item's accuracy (Bin(4, p_i)),
  0.048 when the means agree but the shapes do not (3/4-or-1/4 vs 2/4); coverage 0.950. McNemar's test on majority-solved items was dropped: it tests another
  quantity (the share of items most samples solve), which can move against the mean accuracy
  (student 3/4 on half the items and 0/4 on the rest vs baseline 2/4 on all: accuracy 0.375 vs
  0.5, yet the student "solves" more items, McNemar p = 1.8e-15 in the opposite direction);
- alignment: the student - baseline rows of ``comparisons.csv`` (same test, computed once):
  ``r_student``, ``r_baseline``, ``r_diff`` with its CI, ``p_r`` (= its ``p_boot``),
  ``p_r_steiger`` (secondary); ``__mean__`` rows carry the r-bar contrast and no accuracy test;
- ``p_holm`` / ``p_r_holm``: Holm-adjusted p_acc / p_r over the behaviour family
  (multiplicity.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.behaviour.compare import POOLED, PairSample
from experiments.behaviour.costs import paired
from experiments.behaviour.resampling import bootstrap_t, mean_of

TRANSFER_COLUMNS = [
    "student",
    "baseline",
    "task",
    "n",
    "acc_student",
    "acc_baseline",
    "acc_diff",
    "acc_diff_lo",
    "acc_diff_hi",
    "p_acc",
    "p_holm",
    "r_student",
    "r_baseline",
    "r_diff",
    "r_diff_lo",
    "r_diff_hi",
    "p_r",
    "p_r_holm",
    "p_r_steiger",
    "reason",
]
#: transfer column <- comparisons column (the student - baseline row)
FROM_COMPARISONS = {
    "r_student": "r_a",
    "r_baseline": "r_b",
    "r_diff": "diff",
    "r_diff_lo": "diff_lo",
    "r_diff_hi": "diff_hi",
    "p_r": "p_boot",
    "p_r_holm": "p_holm",
    "p_r_steiger": "p_steiger",
}
NO_ACCURACY = "r-bar contrast; accuracy is tested in the per-task and pooled rows"


def accuracy_row(acc_a: np.ndarray, acc_b: np.ndarray, cols, boot, masks) -> dict:
    """Mean accuracies and the paired bootstrap-t test of their difference on rows ``cols``."""
    d = np.asarray(acc_a, float) - np.asarray(acc_b, float)
    res = bootstrap_t(mean_of(d), cols, boot[:, cols], masks)
    row = {
        "n": len(cols),
        "acc_student": float(np.mean(acc_a[cols])),
        "acc_baseline": float(np.mean(acc_b[cols])),
        "acc_diff": res["est"],
        "acc_diff_lo": res["lo"],
        "acc_diff_hi": res["hi"],
        "p_acc": res["p"],
        "reason": "",
    }
    if not res["se"] > 0:
        row["reason"] = "the same accuracy difference on every item; no test"
    return row


def transfer_table(
    costs: pd.DataFrame,
    pairs: list[tuple[str, str]],
    comparisons: pd.DataFrame,
    *,
    n_boot: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Per-task, pooled and r-bar transfer rows for every (student, baseline) pair; alignment
    columns are copied from the pair's rows of ``comparisons``."""
    rows = []
    for student, baseline in pairs:
        both = paired(costs, student, baseline)
        cmp = comparisons[(comparisons.model_a == student) & (comparisons.model_b == baseline)]
        cmp = cmp.set_index("task")
        acc = {}
        if not both.empty:
            s = PairSample(both, None, None, student, baseline, n_boot, rng)
            a, b = both["accuracy_a"].to_numpy(float), both["accuracy_b"].to_numpy(float)
            acc = {t: accuracy_row(a, b, cols, s.boot, masks) for t, cols, masks, _ in s.slices()}
            if len(acc) == 1:  # one task: the pooled row is the task row itself
                acc[POOLED] = dict(next(iter(acc.values())))
            else:
                cols, masks, _ = s.pooled_slice()
                acc[POOLED] = accuracy_row(a, b, cols, s.boot, masks)
        for task in list(acc) + [t for t in cmp.index if t not in acc]:
            row = {"student": student, "baseline": baseline, "task": task}
            row |= acc.get(task, {"reason": "" if both.empty else NO_ACCURACY})
            if task in cmp.index:
                src = cmp.loc[task]
                row |= {k: src[v] for k, v in FROM_COMPARISONS.items()}
                row["n"] = row.get("n", src["n"])
                notes = (row["reason"], src["reason"] if isinstance(src["reason"], str) else "")
                row["reason"] = "; ".join(x for x in notes if x)
            rows.append(row)
    return pd.DataFrame(rows, columns=TRANSFER_COLUMNS)
