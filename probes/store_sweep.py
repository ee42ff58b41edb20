"""Sweep every site x position of an activation store against one target (what ``handan probe``
runs). Rows are (item_id, sample) activation vectors; the per-item target is broadcast to the
samples of its item and ``groups = item_id`` (see ``probes.targets``). At ``prompt_end`` the
samples of an item carry the same activation, so only the lowest sample of each item is kept there.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from experiments.errors import InputError, NotProbeable
from probes.layer_sweep import sweep
from probes.targets import build_target

PROMPT_POSITIONS = ("prompt_end",)


def first_sample_mask(index: pd.DataFrame) -> np.ndarray:
    """True on each item's lowest sample: the one row per item kept where samples share the
    activation (``prompt_end``: same prompt, same vector)."""
    return (index["sample"] == index.groupby("item_id")["sample"].transform("min")).to_numpy()


def sweep_store(
    store: Any,
    items: pd.DataFrame,
    traces: pd.DataFrame,
    target: str,
    *,
    model: str | None = None,
    positions: Sequence[str] | None = None,
    **sweep_kwargs: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probe ``target`` at every site and position of ``store`` (``hooks.store.ActivationStore``).

    Trivial baselines (log prompt tokens, each ``feat_*`` column, and after the prompt the log of
    the token index — at ``think_close`` that is prompt + reasoning length, readable from the
    position alone) are probed alongside as ``baseline:*`` sites; a ``feat_*`` column some rows
    lack is left out with a warning. Strata for the control task = the items' ``task`` when there
    are several.
    Returns (table with model, target, position columns; out-of-fold predictions)."""
    model = model or store.manifest["model"]
    positions = list(positions or store.positions)
    unknown = sorted(set(positions) - set(store.positions))
    if unknown:
        raise InputError(f"positions {unknown} are not in the store; it has {store.positions}")
    y_item = build_target(target, items, traces, model=model)
    baselines = {"prompt_tokens": build_target("prompt_tokens", items, traces, model=model)}
    baselines |= {
        c: items.set_index("item_id")[c].astype("float64") for c in items if c.startswith("feat_")
    }
    task_of = items.set_index("item_id")["task"].astype(str)
    tables, predictions = [], []
    for position in positions:
        features, rows = {}, None
        for site in store.sites:
            X, index = store.load(site, position)
            keep = index["item_id"].astype(str).isin(y_item.index).to_numpy().copy()
            if position in PROMPT_POSITIONS:
                keep &= first_sample_mask(index)
            index = index[keep].reset_index(drop=True)
            if rows is None:
                rows = index[["item_id", "sample", "token_index"]]
            elif not rows[["item_id", "sample"]].equals(index[["item_id", "sample"]]):
                raise InputError(
                    f"sites disagree on the (item_id, sample) rows at {position!r}; "
                    "the store is inconsistent — re-record it"
                )
            features[f"{site}|{position}"] = X[keep]
        if rows is None or rows.empty:
            raise NotProbeable(
                f"no activation rows at {position!r} have a {target!r} value; "
                "check that the store, items and traces describe the same items"
            )
        item_ids = rows["item_id"].astype(str)
        y = y_item.loc[item_ids].to_numpy()
        columns = {name: values.reindex(item_ids).to_numpy() for name, values in baselines.items()}
        if position not in PROMPT_POSITIONS:
            columns["log_token_index"] = np.log1p(rows["token_index"].to_numpy(dtype=float))
        baseline_features = {}
        for name, column in columns.items():
            missing = int((~np.isfinite(column)).sum())
            if missing:
                warnings.warn(
                    f"baseline {name!r} at {position!r} is missing for {missing} of {len(column)} rows "
                    "(e.g. a feature of one task only); it is left out of the baselines",
                    stacklevel=2,
                )
            elif np.ptp(column) > 0:
                baseline_features[f"baseline:{name}|{position}"] = column[:, None]
        strata = task_of.reindex(item_ids).to_numpy()
        table, preds = sweep(
            features,
            y,
            item_ids.to_numpy(),
            baseline_features=baseline_features,
            strata=strata if len(set(strata)) > 1 else None,
            n_layers=store.manifest.get("n_layers"),
            return_predictions=True,
            **sweep_kwargs,
        )
        tables.append(table)
        predictions.append(preds)
    table = pd.concat(tables, ignore_index=True)
    table.insert(0, "target", target)
    table.insert(0, "model", model)
    preds = pd.concat(predictions, ignore_index=True)
    preds.insert(0, "target", target)
    preds.insert(0, "model", model)
    return table, preds
