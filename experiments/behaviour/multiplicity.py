"""The primary endpoint of the behavioural analysis and Holm's correction over its family.

Primary endpoint (one per teacher -> student pair): the teacher - student r-bar difference, the
``__mean__`` row of that pair in ``comparisons.csv`` (``endpoint == "primary"``): r-bar_T -
r-bar_S, where r-bar is tanh of the unweighted mean over tasks of atanh r(model cost, human
cost) on the items both models answered; tested with the stratified bootstrap-t (``p_boot``).

Family (the tests the behaviour section reports as findings): every ``p_boot`` of
``comparisons.csv`` (pairs x {each task, __pooled__, __mean__}) and every ``p_acc`` of
``transfer.csv`` (student-baseline pairs x {each task, __pooled__}). ``p_holm`` is Holm's
step-down adjustment (statsmodels ``multipletests``, strong family-wise error control under any
dependence) over that whole family, primary endpoint included; transfer's ``p_r_holm`` is the
adjusted p of the same student-baseline row of comparisons.csv (one test, counted once). A pair
with a single task has its pooled (and r-bar) rows equal to the task row: counted once, each
copy gets the same adjusted p.
Secondary columns (Steiger, disattenuated) are sensitivity analyses, outside the family.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from experiments.behaviour.alignment import MEAN
from experiments.behaviour.compare import POOLED


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p's; NaN p's stay NaN and do not count in the family."""
    p = np.asarray(p, float)
    out = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def _copies(frame: pd.DataFrame, pair: list[str]) -> np.ndarray:
    """True on the pooled / r-bar rows of pairs with one task (copies of the task row)."""
    summary = frame["task"].isin([POOLED, MEAN])
    n_tasks = (~summary).groupby([frame[c] for c in pair]).transform("sum")
    return (summary & (n_tasks == 1)).to_numpy()


def apply_holm(comparisons: pd.DataFrame, transfer: pd.DataFrame) -> None:
    """Fill ``p_holm`` of both tables (and transfer's ``p_r_holm``) in place."""
    copies = [
        _copies(comparisons, ["model_a", "model_b"]),
        _copies(transfer, ["student", "baseline"]),
    ]
    p = [
        np.where(c, np.nan, f[col])
        for c, f, col in zip(copies, (comparisons, transfer), ("p_boot", "p_acc"), strict=True)
    ]
    adjusted = holm(np.concatenate(p))
    parts = [adjusted[: len(comparisons)], adjusted[len(comparisons) :]]
    for frame, part, copy, pair in zip(
        (comparisons, transfer),
        parts,
        copies,
        (["model_a", "model_b"], ["student", "baseline"]),
        strict=True,
    ):
        frame["p_holm"] = part
        if copy.any():  # the single task row's adjusted p, for its copies
            first = frame[~copy].groupby([frame[c] for c in pair])["p_holm"].first()
            keys = pd.MultiIndex.from_frame(frame.loc[copy, pair])
            frame.loc[copy, "p_holm"] = first.reindex(keys).to_numpy()
    key = ["model_a", "model_b", "task"]
    lookup = comparisons.set_index(key)["p_holm"]
    index = pd.MultiIndex.from_frame(transfer[["student", "baseline", "task"]], names=key)
    transfer["p_r_holm"] = lookup.reindex(index).to_numpy()


def family_size(comparisons: pd.DataFrame, transfer: pd.DataFrame | None) -> int:
    """Number of tests in the Holm family (a run without a baseline has no transfer rows)."""
    tables = [(comparisons, ["model_a", "model_b"], "p_boot")]
    if transfer is not None and len(transfer):
        tables.append((transfer, ["student", "baseline"], "p_acc"))
    return int(
        sum(
            (np.isfinite(pd.to_numeric(t[col], errors="coerce")) & ~_copies(t, pair)).sum()
            for t, pair, col in tables
        )
    )
