"""Within-item allocation (item fixed effects, arXiv 2606.26502): does a model spend more on
the samples it gets wrong than on those it gets right, on the same item?

Censored samples (``finished_thinking`` False: cut at the budget, graded incorrect) are left out
and counted in ``n_censored``: kept, they would be "wrong" samples at the budget length, so a
budget cut alone would look like spending more on wrong answers. Leaving them out drops the
longest wrong samples when the budget binds, so ``diff`` then errs toward 0; check n_censored.

For each item with both correct and wrong finished samples ("mixed" items), d = mean
log(1 + tokens) of its wrong samples - mean of its correct samples; the item's own difficulty
cancels. Per model and task (and ``__pooled__``): ``n_items`` (items with any sample),
``cost_correct``, ``cost_wrong`` (means over mixed items), ``diff`` = mean d with a one-sample t
95% CI and p (scipy.stats.ttest_1samp over items).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from experiments.behaviour.compare import POOLED

ITEM_EFFECT_COLUMNS = [
    "model",
    "task",
    "n_items",
    "n_mixed",
    "n_censored",
    "cost_correct",
    "cost_wrong",
    "diff",
    "diff_lo",
    "diff_hi",
    "p",
    "reason",
]


def _row(per_item: pd.DataFrame, n_censored: int) -> dict:
    mixed = per_item.dropna()
    row = {"n_items": len(per_item), "n_mixed": len(mixed), "n_censored": n_censored, "reason": ""}
    if len(mixed) < 2:
        cut = f"; {n_censored} censored sample(s) left out" if n_censored else ""
        row["reason"] = (
            f"{len(mixed)} item(s) with both correct and wrong finished samples; needs 2 "
            f"(generate several samples per item){cut}"
        )
        return row
    d = (mixed[False] - mixed[True]).to_numpy()
    row.update(cost_correct=mixed[True].mean(), cost_wrong=mixed[False].mean(), diff=d.mean())
    if np.ptp(d) == 0:
        row["reason"] = "identical difference on every item; CI undefined"
        return row
    test = stats.ttest_1samp(d, 0.0)
    ci = test.confidence_interval(0.95)
    row.update(diff_lo=float(ci.low), diff_hi=float(ci.high), p=float(test.pvalue))
    return row


def item_effects(traces: pd.DataFrame) -> pd.DataFrame:
    """Within-item correct-vs-wrong cost rows per model and task (traces from costs.prepare)."""
    t = traces.assign(
        log_tokens=np.log1p(traces["reasoning_tokens"].to_numpy(float)),
        correct=traces["correct"].astype(bool),
        censored=~traces["finished_thinking"].astype(bool),
    )
    rows = []
    for model, mt in t.groupby("model", sort=True):
        items = pd.MultiIndex.from_frame(mt[["task", "item_id"]].drop_duplicates())
        per_item = (
            mt[~mt["censored"]]
            .pivot_table(
                index=["task", "item_id"], columns="correct", values="log_tokens", aggfunc="mean"
            )
            .reindex(index=items, columns=[True, False])
            .sort_index()
        )
        n_censored = mt.groupby("task")["censored"].sum()
        for task, pt in per_item.groupby(level="task", sort=True):
            rows.append({"model": model, "task": task, **_row(pt, int(n_censored[task]))})
        rows.append({"model": model, "task": POOLED, **_row(per_item, int(n_censored.sum()))})
    return pd.DataFrame(rows, columns=ITEM_EFFECT_COLUMNS)
