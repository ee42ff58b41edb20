"""Contrasts between two models' sweeps (teacher vs student, student vs baseline) and probe
transfer across models of the same width.

``compare`` lines the models up by relative depth (``depth = layer / (n_layers - 1)`` in [0, 1],
from ``sweep``) and reports, per position:
- ``best_layer``: the best key of each model (highest score) and the difference of their scores;
- ``depth``: the mean score of each model's layers inside each of ``depth_bins`` equal bins.
CIs are a paired bootstrap over the items both models were probed on: each replicate resamples
items once and rescores both models' out-of-fold predictions (so the shared item difficulty
cancels). The best layer's score is cross-fitted: a maximum over layers is biased upward the more
layers a model has (the winner's curse: with equal signal at every layer, the raw maxima of 24
layers beat those of 4 by +0.045 on average), so the items are split in two seeded halves, each
model's best key is picked on one half and scored on the other, both ways, and the two scores are
averaged; every bootstrap replicate repeats the pick. ``site_a``/``site_b`` name the best keys on
all the items. Measured (equal signal at every layer, 12 vs 2 layers, 12 seeds): raw maxima differ
by +0.067 on average, the cross-fitted scores by -0.002, and every CI covers 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.errors import InputError
from probes.estimator import LinearProbe
from probes.metrics import bootstrap_scores, group_counts, percentile_ci, score

_TASK_OF_METRIC = {"spearman": "regression", "auroc": "classification"}


def _key(site: str, position: str) -> str:
    return f"{site}|{position}" if position else site


def compare(
    sweep_a: pd.DataFrame,
    sweep_b: pd.DataFrame,
    *,
    predictions_a: pd.DataFrame,
    predictions_b: pd.DataFrame,
    depth_bins: int = 5,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Best-layer and per-relative-depth score differences (a - b) with paired bootstrap CIs.

    ``sweep_*`` / ``predictions_*``: the two outputs of ``sweep(..., return_predictions=True)``
    (baseline rows, sites starting ``baseline:``, are ignored). Returns columns position,
    comparison, depth_lo, depth_hi, site_a, site_b, score_a, score_b, diff, diff_lo, diff_hi,
    n_items (``best_layer`` scores are cross-fitted, see the module docstring)."""
    targets = set(sweep_a.get("target", pd.Series(dtype=str))) | set(
        sweep_b.get("target", pd.Series(dtype=str))
    )
    if len(targets) > 1:
        raise InputError(
            f"the sweeps probe different targets {sorted(targets)}; compare sweeps of one target"
        )
    metrics = set(sweep_a["metric"]) | set(sweep_b["metric"])
    if len(metrics) != 1:
        raise InputError(
            f"the sweeps use different metrics {sorted(metrics)}; compare the same target"
        )
    task = _TASK_OF_METRIC[metrics.pop()]
    rng = np.random.default_rng(seed)
    edges = np.linspace(0, 1, depth_bins + 1)
    rows = []
    for position in sorted(set(sweep_a["position"]) & set(sweep_b["position"])):
        tables = [
            t[
                (t["position"] == position)
                & ~t["site"].str.startswith("baseline:")
                & t["depth"].notna()
            ]
            for t in (sweep_a, sweep_b)
        ]
        if any(t.empty for t in tables):
            continue
        preds = [p[p["position"] == position] for p in (predictions_a, predictions_b)]
        items = np.intersect1d(
            preds[0]["group"].astype(str).unique(), preds[1]["group"].astype(str).unique()
        )
        if len(items) < 3:
            raise InputError(
                f"position {position!r}: the two models share {len(items)} items; "
                "compare needs sweeps over the same items"
            )
        counts = group_counts(len(items), n_boot, rng)

        # (y, out-of-fold prediction, item code) on the shared items, then (score, bootstrap
        # replicates), of every key of each model
        key_rows = [
            {site: _key_rows(preds[m], _key(site, position), items) for site in tables[m]["site"]}
            for m in (0, 1)
        ]
        scored = [
            {
                site: (score(y, oof, task), bootstrap_scores(y, oof, codes, counts, task))
                for site, (y, oof, codes) in kr.items()
            }
            for kr in key_rows
        ]
        best = [max(sc, key=lambda site, sc=sc: sc[site][0]) for sc in scored]
        side = rng.permutation(len(items)) % 2
        halves = np.stack([side == 0, side == 1]).astype(float)  # [2, G]: each item in one half
        fitted = [_cross_fitted(list(kr.values()), counts, halves, task) for kr in key_rows]
        rows.append(
            _row(
                position,
                "best_layer",
                np.nan,
                np.nan,
                best[0],
                best[1],
                fitted[0][0],
                fitted[1][0],
                fitted[0][1] - fitted[1][1],
                len(items),
            )
        )
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            in_bin = [
                t[(t["depth"] >= lo) & ((t["depth"] < hi) | (hi == 1) & (t["depth"] <= hi))]
                for t in tables
            ]
            if any(b.empty for b in in_bin):
                continue
            reps = [[scored[m][s] for s in in_bin[m]["site"]] for m in (0, 1)]
            point = [np.mean([r[0] for r in rep]) for rep in reps]
            boot = [np.mean([r[1] for r in rep], axis=0) for rep in reps]
            rows.append(
                _row(
                    position,
                    "depth",
                    lo,
                    hi,
                    "",
                    "",
                    point[0],
                    point[1],
                    boot[0] - boot[1],
                    len(items),
                )
            )
    return pd.DataFrame(rows)


def _key_rows(
    preds: pd.DataFrame, key: str, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, out-of-fold prediction, item code) of one key's rows on ``items`` (sorted ids)."""
    p = preds[(preds["key"] == key) & preds["group"].astype(str).isin(items)]
    return (
        p["y"].to_numpy(),
        p["oof"].to_numpy(),
        np.searchsorted(items, p["group"].astype(str).to_numpy()),
    )


def _cross_fitted(
    key_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    counts: np.ndarray,
    halves: np.ndarray,
    task: str,
) -> tuple[float, np.ndarray]:
    """Best-key score picked on one half of the items and scored on the other, averaged over the
    two ways: the point estimate and its bootstrap replicates [B] (the pick redone in each).
    ``key_rows``: (y, out-of-fold prediction, item code) of each key."""
    B = len(counts)
    weights = np.vstack([halves, counts * halves[0], counts * halves[1]])  # [2 + 2B, G]
    S = np.array([bootstrap_scores(*rows, weights, task) for rows in key_rows])  # [K, 2 + 2B]

    def pick(
        on: np.ndarray, at: np.ndarray
    ) -> np.ndarray:  # [K, m] each -> score at the key best on `on`
        best = np.argmax(
            np.where(np.isfinite(on), on, -np.inf), axis=0
        )  # undefined scores never win
        return at[best, np.arange(on.shape[1])]  # NaN where the picked key is undefined there

    point = (pick(S[:, [1]], S[:, [0]]) + pick(S[:, [0]], S[:, [1]]))[0] / 2
    first, second = S[:, 2 : 2 + B], S[:, 2 + B :]
    return float(point), (pick(second, first) + pick(first, second)) / 2


def _row(
    position: str,
    comparison: str,
    lo: float,
    hi: float,
    site_a: str,
    site_b: str,
    score_a: float,
    score_b: float,
    diff_reps: np.ndarray,
    n_items: int,
) -> dict:
    diff_lo, diff_hi = percentile_ci(diff_reps)
    return {
        "position": position,
        "comparison": comparison,
        "depth_lo": lo,
        "depth_hi": hi,
        "site_a": site_a,
        "site_b": site_b,
        "score_a": score_a,
        "score_b": score_b,
        "diff": score_a - score_b,
        "diff_lo": diff_lo,
        "diff_hi": diff_hi,
        "n_items": n_items,
    }


def transfer(probe: LinearProbe, X_b: np.ndarray, y: np.ndarray) -> float:
    """Score (Spearman rho or AUROC) of ``probe``, fitted on model A's activations, applied
    unchanged to model B's activations ``X_b`` [n, d] (same width) against ``y`` [n]."""
    width = probe.n_features_in_
    if np.asarray(X_b).shape[1] != width:
        raise InputError(
            f"the probe was fitted on width {width} but X_b has width "
            f"{np.asarray(X_b).shape[1]}; transfer needs models of the same d_model"
        )
    if probe.task == "classification":
        return score(np.asarray(y, dtype=float), probe.decision_function(X_b), "classification")
    return score(np.asarray(y, dtype=float), probe.predict(X_b), "regression")
