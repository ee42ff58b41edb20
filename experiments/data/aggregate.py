"""Trial table -> one row of human cost per item (the rule every trial-level dataset shares, and
the one ``handan data import`` applies to a user's trials).

Rule (units: seconds):
1. Every trial with a response counts for accuracy: ``human_accuracy`` = correct / all trials of
   the item and ``n_human`` = number of trials of the item.
2. Reaction times come from correct trials only. Trials whose RT is missing, not finite, zero or
   negative are left out of the RT statistics; how many is reported with a ``UserWarning``.
3. Trimming, per item, leave-one-out: when an item has at least 3 such correct RTs, a trial is
   dropped when its log RT lies outside the 99.73% prediction interval (the coverage of ±3 SD of
   a normal) of the item's OTHER correct log RTs: ``|x - mean| > t(0.99865, n - 2) * sd *
   sqrt(1 + 1 / (n - 1))`` with the others' mean and sample SD (ddof=1); when the others are all
   equal, any different RT is dropped. Every trial is judged against the full set of others in
   one pass. Leaving the trial out matters: a point lies at most (n - 1) / sqrt(n) SDs from a
   mean that includes it, under 3 for n <= 10, so "3 SD from the item mean" could never fire
   there. The t quantile keeps the rule calibrated at every n: of normal log RTs it drops 0.27%
   whatever the item's size (a fixed 3 SD of the others dropped 25% at n = 3, 12% at n = 4, 7% at
   n = 5: simulated, 20,000 items each), so a small item
   loses only a gross outlier; from about 30 RTs it is the familiar 3 SD.
4. One scale, the log scale the trimming works on: ``human_rt_s`` = the geometric mean of the
   kept RTs, ``exp(mean of the kept log RTs)`` (seconds), and ``human_rt_sd`` = the sample SD
   (ddof=1) of the kept log RTs (log seconds; NaN below two RTs). An item without a usable
   correct RT keeps NaN for both.

Why the geometric mean. The trimming treats an item's log RTs as normal; the location of that
model is the mean of the log RTs, and its back-transform, the geometric mean, estimates the
median RT. The arithmetic mean of the kept seconds would mix scales: a kept slow trial pulls it
far up (1, 2, 3, 4, 100 s: no trial is trimmed at n = 5; arithmetic mean 22.0 s, geometric mean
4.7 s, median 3 s). The behavioural analysis takes ``log(human_rt_s)``, so human cost is exactly
the mean of the kept log RTs — the same form as model cost (a mean of ``log(1 + tokens)`` over
samples). The median would be robust by itself, making the trimming idle, and under a lognormal
it is the less efficient estimate of the same quantity (variance pi/2 = 1.57 times that of the
mean of logs), which matters at the 3-20 correct RTs an item has.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

TRIM_COVERAGE = 1 - 2 * stats.norm.sf(3.0)  # that of ±3 SD
MIN_TRIALS_TO_TRIM = 3
#: what happened to each trial in the RT statistics (:func:`aggregate_trials`)
KEPT, INCORRECT, NO_RT, TRIMMED = "kept", "incorrect", "no valid RT", "trimmed"
COST_COLUMNS = ["item_id", "human_rt_s", "human_rt_sd", "human_accuracy", "n_human"]


def valid_rt(rt: pd.Series) -> pd.Series:
    """True where ``rt`` is a finite, strictly positive number."""
    values = pd.to_numeric(rt, errors="coerce").astype("float64")
    return values.notna() & np.isfinite(values) & (values > 0)


def _keep_leave_one_out(log_rt: pd.Series) -> pd.Series:
    x = log_rt.to_numpy()
    keep = np.ones(len(x), dtype=bool)
    if len(x) < MIN_TRIALS_TO_TRIM:
        return pd.Series(keep, index=log_rt.index)
    n = len(x)
    cutoff = stats.t.ppf((1 + TRIM_COVERAGE) / 2, df=n - 2) * np.sqrt(1 + 1 / (n - 1))
    for i in range(n):
        # shifted by one of the others, so equal others give a mean and SD of exactly 0
        others = np.delete(x, i)
        shifted = others - others[0]
        distance = abs(x[i] - others[0] - shifted.mean())
        keep[i] = distance <= cutoff * shifted.std(ddof=1)
    return pd.Series(keep, index=log_rt.index)


def aggregate_trials(trials: pd.DataFrame, *, source: str) -> tuple[pd.DataFrame, pd.Series]:
    """Aggregate ``trials`` (columns ``item_id``, ``rt_s`` in seconds, ``correct`` bool) following
    the module rule. Returns the item costs (``item_id, human_rt_s, human_rt_sd, human_accuracy,
    n_human``) and, per trial (``trials``' index), its part in the RT statistics: ``kept``,
    ``incorrect``, ``no valid RT`` or ``trimmed``."""
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
    rts = trials.loc[correct & ok, ["item_id"]].assign(
        log_rt=np.log(pd.to_numeric(trials.loc[correct & ok, "rt_s"]).astype("float64"))
    )
    keep = rts["log_rt"].groupby(rts["item_id"], group_keys=False).apply(_keep_leave_one_out)
    keep = keep.reindex(rts.index).astype(bool)
    status = pd.Series(INCORRECT, index=trials.index, dtype=object)
    status[correct & ~ok] = NO_RT
    status[rts.index] = np.where(keep, KEPT, TRIMMED)
    log_stats = (
        rts[keep]
        .groupby("item_id")["log_rt"]
        .agg(human_rt_s=lambda s: np.exp(s.mean()), human_rt_sd=lambda s: s.std(ddof=1))
    )
    acc = trials.groupby("item_id")["correct"].agg(human_accuracy="mean", n_human="size")
    out = acc.join(log_stats, how="left").reset_index()
    out["human_accuracy"] = out["human_accuracy"].astype("float64")
    return out[COST_COLUMNS], status


def item_costs(trials: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """The item costs of :func:`aggregate_trials` (the registered datasets' loaders use this)."""
    return aggregate_trials(trials, source=source)[0]
