"""Trial table -> one row of human cost per item (the rule every trial-level dataset shares).

Rule (units: seconds):
1. Every trial with a response counts for accuracy: ``human_accuracy`` = correct / all trials of
   the item and ``n_human`` = number of trials of the item.
2. Reaction times come from correct trials only. Trials whose RT is missing, not finite, zero or
   negative are left out of the RT statistics; how many is reported with a ``UserWarning``.
3. Trimming, per item: when an item has at least 3 such correct RTs, a trial is dropped when its
   log RT lies more than 3 SD (sample SD, ddof=1) from the item's mean log RT (one pass).
4. ``human_rt_s`` = mean of the kept RTs, ``human_rt_sd`` = their sample SD (ddof=1; NaN below two
   RTs). An item without a usable correct RT keeps NaN for both.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

TRIM_SD = 3.0
MIN_TRIALS_TO_TRIM = 3


def valid_rt(rt: pd.Series) -> pd.Series:
    """True where ``rt`` is a finite, strictly positive number."""
    values = pd.to_numeric(rt, errors="coerce").astype("float64")
    return values.notna() & np.isfinite(values) & (values > 0)


def _keep_within_sd(log_rt: pd.Series) -> pd.Series:
    if len(log_rt) < MIN_TRIALS_TO_TRIM:
        return pd.Series(True, index=log_rt.index)
    sd = log_rt.std(ddof=1)
    if not sd > 0:
        return pd.Series(True, index=log_rt.index)
    return (log_rt - log_rt.mean()).abs() <= TRIM_SD * sd


def item_costs(trials: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """Aggregate ``trials`` (columns ``item_id``, ``rt_s`` in seconds, ``correct`` bool) into
    ``item_id, human_rt_s, human_rt_sd, human_accuracy, n_human`` following the module rule."""
    correct = trials["correct"].astype(bool)
    ok = valid_rt(trials["rt_s"])
    bad = int((correct & ~ok).sum())
    if bad:
        warnings.warn(
            f"{source}: dropped {bad} correct trial(s) with a missing, zero or negative RT "
            "from the RT statistics (they still count for accuracy)",
            UserWarning,
            stacklevel=3,
        )
    rts = trials.loc[correct & ok, ["item_id", "rt_s"]].astype({"rt_s": "float64"})
    log_rt = np.log(rts["rt_s"])
    keep = log_rt.groupby(rts["item_id"], group_keys=False).apply(_keep_within_sd)
    kept = rts[keep.reindex(rts.index).astype(bool)]
    rt_stats = kept.groupby("item_id")["rt_s"].agg(human_rt_s="mean", human_rt_sd=lambda s: s.std(ddof=1))
    acc = trials.groupby("item_id")["correct"].agg(human_accuracy="mean", n_human="size")
    out = acc.join(rt_stats, how="left").reset_index()
    out["human_accuracy"] = out["human_accuracy"].astype("float64")
    return out[["item_id", "human_rt_s", "human_rt_sd", "human_accuracy", "n_human"]]
