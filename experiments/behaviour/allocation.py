"""Within-item allocation (item fixed effects, arXiv 2606.26502): does a model spend more on
the samples it gets wrong than on those it gets right, on the same item?

For each item with both correct and wrong samples ("mixed" items), d = mean log(1 + tokens) of
its wrong samples - mean of its correct samples; the item's own difficulty cancels. Per model
and task (and ``__pooled__``): ``cost_correct``, ``cost_wrong`` (means over mixed items),
``diff`` = mean d with a one-sample t 95% CI and p (scipy.stats.ttest_1samp over items).
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
    "cost_correct",
    "cost_wrong",
    "diff",
    "diff_lo",
    "diff_hi",
    "p",
    "reason",
]


def _row(per_item: pd.DataFrame, n_items: int) -> dict:
    mixed = per_item.dropna()
    row = {"n_items": n_items, "n_mixed": len(mixed), "reason": ""}
    if len(mixed) < 2:
        row["reason"] = (
            f"{len(mixed)} item(s) with both correct and wrong samples; needs 2 "
            "(generate several samples per item)"
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
    )
    rows = []
    for model, mt in t.groupby("model", sort=True):
        per_item = mt.pivot_table(
            index=["task", "item_id"], columns="correct", values="log_tokens", aggfunc="mean"
        )
        per_item = per_item.reindex(columns=[True, False])
        for task, pt in per_item.groupby(level="task", sort=True):
            rows.append({"model": model, "task": task, **_row(pt, len(pt))})
        rows.append({"model": model, "task": POOLED, **_row(per_item, len(per_item))})
    return pd.DataFrame(rows, columns=ITEM_EFFECT_COLUMNS)
