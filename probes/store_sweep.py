"""Sweep every site x position of an activation store against one target (what ``handan probe``
runs). Rows are (item_id, sample) activation vectors; the per-item target is broadcast to the
samples of its item and ``groups = item_id`` (see ``probes.targets``). At ``prompt_end`` the
samples of an item carry the same activation, so only the lowest sample of each item is kept there.
"""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from experiments.errors import InputError, NotProbeable
from probes.controls import item_permutations
from probes.crossfit import N_SPLITS, HalfScores, half_scores, half_splits
from probes.layer_sweep import family_wise_p, sweep
from probes.targets import build_target

PROMPT_POSITIONS = ("prompt_end",)


def select_sites(available: Sequence[str], wanted: Sequence[str] | None) -> list[str]:
    """The sites of ``available`` (a store's, in its order) matching ``wanted`` (names or
    ``fnmatch`` patterns, e.g. ``attn_z.*``; None: all); a name or pattern matching none fails."""
    if wanted is None:
        return list(available)
    if isinstance(wanted, str):
        wanted = [w.strip() for w in wanted.split(",") if w.strip()]
    unmatched = [w for w in wanted if not fnmatch.filter(available, w)]
    if unmatched or not wanted:
        raise InputError(
            f"sites {unmatched or wanted} match none of the store's sites {list(available)}"
        )
    return [s for s in available if any(fnmatch.fnmatchcase(s, w) for w in wanted)]


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
    sites: Sequence[str] | None = None,
    n_permutations: int = 100,
    seed: int = 0,
    **sweep_kwargs: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probe ``target`` at every site and position of ``store`` (``hooks.store.ActivationStore``).

    Trivial baselines (log prompt tokens, each ``feat_*`` column, and after the prompt the log of
    the token index — at ``think_close`` that is prompt + reasoning length, readable from the
    position alone) are probed alongside as ``baseline:*`` sites; a ``feat_*`` column some rows
    lack is left out with a warning. The null permutes the items' labels once per draw for every
    position, within strata = the items' ``task`` x the set of probed positions where the item
    has rows (a ``think_close`` that never occurred must not lend its label to one that did), so
    ``p_fwe`` is one max-T over every site x position of the store — the family the best site is
    picked from — and can reach 1 / (1 + n_permutations) whatever the number of positions. Its
    family-wise size at alpha = .05 in the real runs' regime (28 layers x 2 positions, d = 1536,
    300 items, 99 permutations, 80 replications of ``benchmarks/probe_stats.py --only real``):
    0.062 (MC SE 0.027).
    ``sites``: the store's sites to probe (names or patterns such as ``attn_z.*``; default all):
    the family of ``p_fwe`` is those sites x positions (per-head sites: every layer x head).
    Returns (table with model, target, position columns; out-of-fold predictions)."""
    data = StoreTarget(store, items, traces, target, model=model, sites=sites)
    positions = data.check_positions(positions)
    donors = item_permutations(
        data.permutation_strata(positions),
        len(data.y_item),
        n_permutations,
        np.random.default_rng(seed),
    )
    tables, predictions, nulls = [], [], []
    for position in positions:
        block = data.load(position)
        null_labels = data.y_item.to_numpy()[donors[:, block.item_codes]].T
        table, preds, null = sweep(
            block.features,
            block.y,
            block.groups,
            baseline_features=block.baselines,
            strata=block.strata,
            n_layers=store.manifest.get("n_layers"),
            null_labels=null_labels,
            seed=seed,
            return_predictions=True,
            return_nulls=True,
            **sweep_kwargs,
        )
        tables.append(table)
        predictions.append(preds)
        nulls.append(null.to_numpy())
    table = pd.concat(tables, ignore_index=True)
    real = ~table["site"].str.startswith("baseline:")
    table.loc[real, "p_fwe"] = family_wise_p(table.loc[real, "score"], np.vstack(nulls))
    table.insert(0, "target", target)
    table.insert(0, "model", data.model)
    preds = pd.concat(predictions, ignore_index=True)
    preds.insert(0, "target", target)
    preds.insert(0, "model", data.model)
    return table, preds


@dataclass(frozen=True)
class PositionBlock:
    """One position's probe inputs: ``features`` {"site|position": X [n, d]}, trivial
    ``baselines`` {"baseline:name|position": [n, 1]}, ``y`` [n], ``groups`` [n] (item ids),
    ``item_codes`` [n] (index into ``StoreTarget.y_item``), ``strata`` [n] or None."""

    features: dict[str, np.ndarray]
    baselines: dict[str, np.ndarray]
    y: np.ndarray
    groups: np.ndarray
    item_codes: np.ndarray
    strata: np.ndarray | None


class StoreTarget:
    """A store's activations lined up with one target, position by position (rows = (item_id,
    sample) vectors; one row per item at ``prompt_end``)."""

    def __init__(
        self,
        store: Any,
        items: pd.DataFrame,
        traces: pd.DataFrame,
        target: str,
        *,
        model: str | None = None,
        item_ids: Sequence[str] | None = None,
        sites: Sequence[str] | None = None,
    ) -> None:
        self.store = store
        self.sites = select_sites(store.sites, sites)
        self.model = model or store.manifest["model"]
        self.target = target
        y_item = build_target(target, items, traces, model=self.model).sort_index()
        if item_ids is not None:
            y_item = y_item[y_item.index.isin([str(i) for i in item_ids])]
        self.y_item = y_item
        self._baselines = {
            "prompt_tokens": build_target("prompt_tokens", items, traces, model=self.model)
        }
        self._baselines |= {
            c: items.set_index("item_id")[c].astype("float64")
            for c in items
            if c.startswith("feat_")
        }
        self.task_of = (
            items.set_index("item_id")["task"].astype(str).reindex(y_item.index).fillna("")
        )
        several = self.task_of.nunique() > 1
        self.item_strata = (
            np.unique(self.task_of.to_numpy(), return_inverse=True)[1] if several else None
        )

    def check_positions(self, positions: Sequence[str] | None) -> list[str]:
        positions = list(positions or self.store.positions)
        unknown = sorted(set(positions) - set(self.store.positions))
        if unknown:
            raise InputError(
                f"positions {unknown} are not in the store; it has {self.store.positions}"
            )
        return positions

    def permutation_strata(self, positions: Sequence[str]) -> np.ndarray:
        """Integer stratum per item of ``y_item``: its task x where among ``positions`` it has
        rows (items exchangeable under H0 at every position at once)."""
        index = self.store.index
        present = index[(index["shard"] != "") & index["position"].isin(positions)]
        pattern = (
            present.groupby(present["item_id"].astype(str))["position"]
            .agg(lambda p: "|".join(sorted(set(p))))
            .reindex(self.y_item.index)
            .fillna("")
        )
        return np.unique(self.task_of + "#" + pattern, return_inverse=True)[1]

    def load(self, position: str) -> PositionBlock:
        features, rows = {}, None
        for site in self.sites:
            X, index = self.store.load(site, position)
            keep = index["item_id"].astype(str).isin(self.y_item.index).to_numpy().copy()
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
                f"no activation rows at {position!r} have a {self.target!r} value; "
                "check that the store, items and traces describe the same items"
            )
        item_ids = rows["item_id"].astype(str)
        columns = {
            name: values.reindex(item_ids).to_numpy() for name, values in self._baselines.items()
        }
        if position not in PROMPT_POSITIONS:
            columns["log_token_index"] = np.log1p(rows["token_index"].to_numpy(dtype=float))
        baselines = {}
        for name, column in columns.items():
            missing = int((~np.isfinite(column)).sum())
            if missing:
                warnings.warn(
                    f"baseline {name!r} at {position!r} is missing for {missing} of "
                    f"{len(column)} rows (e.g. a feature of one task only); it is left out of "
                    "the baselines",
                    stacklevel=3,
                )
            elif np.ptp(column) > 0:
                baselines[f"baseline:{name}|{position}"] = column[:, None]
        strata = self.task_of.loc[item_ids].to_numpy()
        return PositionBlock(
            features=features,
            baselines=baselines,
            y=self.y_item.loc[item_ids].to_numpy(),
            groups=item_ids.to_numpy(),
            item_codes=self.y_item.index.get_indexer(item_ids),
            strata=strata if self.item_strata is not None else None,
        )


def crossfit_store(
    store: Any,
    items: pd.DataFrame,
    traces: pd.DataFrame,
    target: str,
    *,
    model: str | None = None,
    positions: Sequence[str] | None = None,
    item_ids: Sequence[str] | None = None,
    sites: Sequence[str] | None = None,
    n_splits: int = N_SPLITS,
    seed: int = 0,
    **half_kwargs: Any,
) -> HalfScores:
    """``probes.crossfit.half_scores`` of every site x position of ``store`` (and the trivial
    baselines) on ``n_splits`` halvings of the items that have ``target`` (only ``item_ids``
    when given: two models are compared on the items both have), stratified by task. The halves
    depend only on the items and ``seed``, so two models probed on the same items share them."""
    data = StoreTarget(store, items, traces, target, model=model, item_ids=item_ids, sites=sites)
    halves = half_splits(data.y_item.index, n_splits, seed, strata=data.task_of.to_numpy())
    result = None
    for position in data.check_positions(positions):
        block = data.load(position)
        part = half_scores(
            block.features | block.baselines,
            block.y,
            block.groups,
            halves,
            n_layers=store.manifest.get("n_layers"),
            seed=seed,
            target=target,
            **half_kwargs,
        )
        result = part if result is None else result.concat(part)
    assert result is not None  # check_positions returns at least one position
    return result
