"""Probe targets built from the Items and Traces tables, one value per item (indexed by item_id).

Names:
- ``human_rt``: log of ``human_rt_s`` (seconds).
- ``reasoning_tokens``: log1p of the model's own mean reasoning tokens over its samples of the
  item (its resource-allocation policy; censored traces count at the budget).
- ``prompt_tokens``: log of the mean prompt length in tokens (a trivial baseline).
- ``correct``: the model's mean accuracy over its samples of the item (0-1).
- any ``feat_*`` column of the Items table, as is.
- ``"a|b"``: target ``a`` with ``b`` partialled out — the OLS residual of ``a`` on ``[1, b]`` over
  the items that have both (e.g. ``reasoning_tokens|human_rt``: own length beyond human cost).

Items without the quantity (missing RT, no trace of this model) are dropped, never imputed.

Mapping to activation rows: activations are stored per (item_id, sample); a per-item target is
broadcast to every sample of the item and the sweep is run with ``groups = item_id``, so all
samples of an item share a fold. At ``prompt_end`` the activations of an item's samples are
identical (the prompt is the same), which is why the item, not the sample, is the unit of
cross-validation and bootstrap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm

from experiments.errors import InputError, NotProbeable

BASE_TARGETS = ("human_rt", "reasoning_tokens", "prompt_tokens", "correct")


def _model_traces(traces: pd.DataFrame, model: str) -> pd.DataFrame:
    rows = traces[traces["model"] == model]
    if rows.empty:
        known = sorted(traces["model"].astype(str).unique().tolist())
        raise InputError(f"traces table has no rows for model {model!r}; models present: {known}")
    return rows


def _base_target(name: str, items: pd.DataFrame, traces: pd.DataFrame, model: str) -> pd.Series:
    if name == "human_rt":
        rt = items.set_index("item_id")["human_rt_s"].astype("float64")
        if (rt <= 0).any():
            raise InputError(
                "human_rt_s has non-positive values; RTs must be > 0 seconds to take logs"
            )
        return np.log(rt)
    if name.startswith("feat_"):
        if name not in items.columns:
            feats = [c for c in items.columns if c.startswith("feat_")]
            raise InputError(f"items table has no column {name!r}; feat_* columns present: {feats}")
        return items.set_index("item_id")[name].astype("float64")
    if name in ("reasoning_tokens", "prompt_tokens", "correct"):
        per_item = _model_traces(traces, model).groupby("item_id")[name].mean().astype("float64")
        if name == "reasoning_tokens":
            return np.log1p(per_item)
        return np.log(per_item) if name == "prompt_tokens" else per_item
    raise InputError(
        f"unknown target {name!r}; use one of {BASE_TARGETS}, a feat_* column, "
        "or 'a|b' (a with b partialled out)"
    )


def build_target(name: str, items: pd.DataFrame, traces: pd.DataFrame, *, model: str) -> pd.Series:
    """The target ``name`` per item (Series indexed by item_id, named ``name``, NaNs dropped).

    ``a|b``: the residual of an OLS of a on b (with intercept) over every item that has both,
    fitted once before the probe's folds — two parameters learnt from the test folds' items too,
    a leak too small to move a score (and the same for the labels of every layer)."""
    if "|" in name:
        outcome, control = name.split("|", 1)
        both = pd.concat(
            [
                _base_target(outcome, items, traces, model),
                _base_target(control, items, traces, model),
            ],
            axis=1,
        ).dropna()
        if len(both) < 3:
            raise NotProbeable(
                f"target {name!r}: only {len(both)} items have both {outcome} and "
                f"{control}; residualising needs at least 3"
            )
        fit = sm.OLS(both.iloc[:, 0].to_numpy(), sm.add_constant(both.iloc[:, 1].to_numpy())).fit()
        series = pd.Series(fit.resid, index=both.index)
    else:
        series = _base_target(name, items, traces, model).dropna()
    series.index = series.index.astype(str)
    series.index.name = "item_id"
    return series.rename(name)
