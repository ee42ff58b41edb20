"""One model's steering study in a run (``handan run`` / ``handan demo``), every choice made on the
direction-fitting items before a held-out item is steered:

1. the site: a small probe sweep of ``target`` over the recorded sites below the last layer, on
   the fit items only (grouped CV, no permutations; ``site_choice.csv``) — the probe stage's
   sweep covers every item, the held-out ones too, so picking the site from it would leak them;
2. the directions (``target`` and ``control_target``) fitted at that site on the fit items;
3. ``scale``: the mean residual norm where the vector is added (``norms.injected_norm``);
4. the linear range ``alpha_max`` by the pre-registered rule of ``calibration`` on the fit items;
5. on the held-out items: ``target`` and ``control_target`` on the whole alpha grid (the full
   curve), ``n_random`` random directions of equal norm at ``±alpha_max`` (the null of the slope);
6. given the model's head store: the head-ablation control (``experiments.steering.ablation``:
   the ``heads.k`` best heads for ``target`` on the fit items vs random head sets, at ``doses``).

``settings`` has the fields of ``experiments.pipeline.config.SteerCfg``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.contracts import stable_hash
from experiments.errors import InputError

SITE_COLUMNS = ["model", "site", "position", "target", "score", "n", "chosen"]


@dataclass
class Study:
    """What one model's study produced: the held-out steering table, the linear-range rows, the
    site choice rows, and the fitted directions (name → (vector, metadata))."""

    steering: pd.DataFrame
    linear: pd.DataFrame
    sites: pd.DataFrame
    directions: dict
    heads: pd.DataFrame | None = None  # head ablation (``experiments.steering.ablation``)
    head_choice: pd.DataFrame | None = None


def subsample(item_ids: pd.Series, n: int | None) -> pd.Series:
    """True on at most ``n`` items: those with the smallest salted sha1 of their id (fixed and
    content-free; every item when ``n`` is None)."""
    if n is None or n >= len(item_ids):
        return pd.Series(True, index=item_ids.index)
    h = item_ids.map(lambda s: hashlib.sha1(f"steer:{s}".encode()).hexdigest())
    return h.rank(method="first") <= n


def by_length(items: pd.DataFrame, traces: pd.DataFrame, model: str) -> pd.DataFrame:
    """``items`` ordered by the model's mean unsteered generated length (stable): rows of similar
    length share a batch, and a batch runs as long as its longest row."""
    own = traces[traces["model"] == model]
    length = (own["reasoning_tokens"] + own["answer_tokens"]).groupby(own["item_id"]).mean()
    key = items["item_id"].map(length).fillna(np.inf)
    return items.iloc[np.argsort(key.to_numpy(), kind="stable")]


def choose_site(store, items, traces, *, model, target, position, fit_ids, seed):
    """(site, table): the best fold-wise score of ``target`` on the fit items, over the store's
    sites below the last layer (the last layer's output at a prompt position feeds only the
    unembedding — no later layer reads it — so steering it could change only the first token)."""
    from probes.layer_sweep import layer_of, sweep
    from probes.store_sweep import first_sample_mask
    from probes.targets import build_target

    y = build_target(target, items, traces, model=model)
    last = store.manifest["n_layers"] - 1
    features, ids = {}, None
    for site in store.manifest["sites"]:
        if not layer_of(site) < last:
            continue
        X, index = store.load(site, position)
        keep = first_sample_mask(index) & index["item_id"].isin(fit_ids & set(y.index)).to_numpy()
        features[site], ids = X[keep], index.loc[keep, "item_id"].astype(str).to_numpy()
    if not features:
        raise InputError(
            f"{model}: the store has no site below the last layer at {position!r}; record "
            "resid_post.* or set steering.site"
        )
    table = sweep(features, y.loc[ids].to_numpy(float), ids, n_permutations=0, n_boot=0, seed=seed)
    best = str(table.loc[table["score"].idxmax(), "site"])
    rows = table.assign(model=model, position=position, target=target, chosen=table["site"] == best)
    return best, rows.reindex(columns=SITE_COLUMNS)


def fit_directions(store, items, traces, *, model, site, settings, fit_ids) -> dict:
    """The ``target`` and ``control_target`` directions at ``site``, fitted on the fit items:
    name → (unit vector, metadata for ``probes.directions.save_direction``)."""
    from experiments.steering.experiment import direction_name
    from probes.directions import fit_direction
    from probes.store_sweep import first_sample_mask
    from probes.targets import build_target

    X, index = store.load(site, settings.position)
    first = first_sample_mask(index)
    X, ids = X[first], index.loc[first, "item_id"].astype(str).to_numpy()
    out = {}
    for target in (settings.target, settings.control_target):
        y = build_target(target, items, traces, model=model)
        keep = pd.Series(ids).isin(fit_ids & set(y.index)).to_numpy()
        vector = fit_direction(X[keep], y.loc[ids[keep]].to_numpy(), method=settings.method)
        meta = dict(
            model=model,
            site=site,
            position=settings.position,
            target=target,
            method=settings.method,
            n=int(keep.sum()),
            item_ids=sorted(ids[keep].tolist()),
        )
        out[direction_name(target)] = (vector, meta)
    return out


def run_study(
    model,
    tokenizer,
    spec,
    *,
    store,
    items: pd.DataFrame,
    traces: pd.DataFrame,
    fit_ids: set,
    test_items: pd.DataFrame,
    settings,
    config,
    seed: int,
    out: Callable[[str], Path],
    progress: bool = True,
    head_store=None,
) -> Study:
    """Steps 1-5 of the module docstring for one loaded model; ``out(condition)`` is the folder
    of its generations under a condition hash (site, positions, scale, settings, directions):
    the held-out runs in it (``runs/``), the linear-range runs in ``calibration/runs/``."""
    from experiments.steering.calibration import linear_range
    from experiments.steering.experiment import random_directions, run_steering
    from experiments.steering.norms import injected_norm
    from hooks.sites import d_model

    s, name = settings, spec.name
    site, sites = s.site, pd.DataFrame(columns=SITE_COLUMNS)
    if site is None:
        site, sites = choose_site(
            store,
            items,
            traces,
            model=name,
            target=s.target,
            position=s.position,
            fit_ids=fit_ids,
            seed=seed,
        )
    fitted = fit_directions(
        store, items, traces, model=name, site=site, settings=s, fit_ids=fit_ids
    )
    width = d_model(model)
    null = dict(
        zip([f"random{k}" for k in range(s.n_random)], random_directions(width, s.n_random, seed))
    )
    calibration = dict(
        zip(
            [f"calibration{k}" for k in range(s.n_calibration)],
            random_directions(width, s.n_calibration, seed + 1),
        )
    )
    own = traces[traces["model"] == name].sort_values("sample").drop_duplicates("item_id")
    continuations = items["item_id"].map(own.set_index("item_id")["text"]).fillna("")
    scale = injected_norm(
        model,
        tokenizer,
        spec,
        items["prompt"].tolist(),
        site,
        positions=s.inject,
        continuations=continuations.tolist(),
        batch_size=config.batch_size,
    )
    vectors = {n: v for n, (v, _) in fitted.items()} | null | calibration
    folder = out(
        stable_hash(
            [
                site,
                s.inject,
                scale,
                config.identity(),
                {k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in vectors.items()},
            ]
        )
    )
    common = dict(site=site, positions=s.inject, scale=scale, config=config, progress=progress)
    fit_items = items[items["item_id"].isin(fit_ids)]
    fit_items = by_length(
        fit_items[subsample(fit_items["item_id"], s.calibration_items)], traces, name
    )
    alpha_max, linear = linear_range(
        model,
        tokenizer,
        spec,
        fit_items,
        directions=calibration,
        alphas=s.alphas,
        tolerance=s.linear_tolerance,
        out=folder / "calibration",
        **common,
    )
    grid = sorted({float(a) for a in s.alphas} | {-alpha_max, alpha_max})
    alphas = {n: grid for n in fitted} | {n: [-alpha_max, alpha_max] for n in null}
    table = run_steering(
        model,
        tokenizer,
        spec,
        by_length(test_items, traces, name),
        directions={n: v for n, (v, _) in fitted.items()} | null,
        alphas=alphas,
        out=folder,
        **common,
    )
    linear = linear.assign(model=name, site=site, scale=scale)
    study = Study(table, linear, sites, fitted)
    if head_store is not None and s.heads.enabled:  # 6. the head-ablation control
        from experiments.steering.ablation import ablation_study

        study.heads, study.head_choice = ablation_study(
            model,
            tokenizer,
            spec,
            head_store,
            items=items,
            traces=traces,
            fit_ids=fit_ids,
            test_items=by_length(test_items, traces, name),
            settings=s,
            config=config,
            seed=seed,
            out=out,
            progress=progress,
        )
    return study
