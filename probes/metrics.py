"""Probe scores and their bootstrap over items.

A probe is scored fold by fold (``fold_scores``): regression = the Spearman rho between the
predictions and the truth inside each outer test fold, averaged over the folds weighted by their
rows; classification = the AUROC over the (positive, negative) pairs of the same fold. Scoring the
pooled out-of-fold predictions instead mixes the folds' intercepts: each fold's model is centred
on its training labels' mean, which is high exactly when the test fold's labels are low, so under
H0 the pooled Spearman is biased negative (-0.146 at 80 items, -0.047 at 392 with d = 512;
``fold_scores``). Inside one fold the predictions come from one fitted model, so
under H0 the score's mean is 0 (0.5 for AUROC) at any n (measured: see ``fold_scores``).

Scores are computed on (weighted) mid-ranks, so one routine serves the plain score and the
bootstrap: a bootstrap replicate that draws item g ``c_g`` times is the same as giving each of g's samples the integer weight ``c_g``
(duplicated observations tie, and tied observations get the mid-rank). Vectorising over replicates
this way replaces 1,000 calls to ``scipy.stats.spearmanr`` per probe with a few [B, n] array
operations; tests check it against scipy/scikit-learn on explicit resamples.
"""

from __future__ import annotations

import numpy as np
import scipy.stats as st

METRICS = {"regression": "spearman", "classification": "auroc"}


def weighted_midranks(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mid-ranks of ``values`` [n] in the sample where observation i appears ``weights[b, i]``
    times, for each row b of ``weights`` [B, n]. Returns [B, n] (1-based ranks)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # start of each tie run
    run = np.cumsum(np.r_[True, ordered[1:] != ordered[:-1]]) - 1  # tie run of each sorted row
    w_unique = np.add.reduceat(weights[:, order], first, axis=1)  # [B, U]
    below = np.cumsum(w_unique, axis=1) - w_unique
    mid = below + (w_unique + 1) / 2
    ranks = np.empty(weights.shape)
    ranks[:, order] = mid[:, run]
    return ranks


def weighted_scores(y: np.ndarray, pred: np.ndarray, weights: np.ndarray, task: str) -> np.ndarray:
    """Score of ``pred`` vs ``y`` (both [n]) under each weight row of ``weights`` [B, n]; [B]."""
    if task == "regression":
        rp = weighted_midranks(pred, weights)
        ry = weighted_midranks(y, weights)
        total = weights.sum(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):  # a draw without these rows
            my = (weights * ry).sum(1, keepdims=True) / total
            mp = (weights * rp).sum(1, keepdims=True) / total
            cov = (weights * (ry - my) * (rp - mp)).sum(1)
            var = (weights * (ry - my) ** 2).sum(1) * (weights * (rp - mp) ** 2).sum(1)
            return np.where(var > 0, cov / np.sqrt(np.where(var > 0, var, 1.0)), np.nan)
    wins, pairs = _pair_wins(y, pred, weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        return wins / pairs


def _pair_wins(
    y: np.ndarray, pred: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mann-Whitney U of the positives (ties count 1/2) and the number of (positive, negative)
    pairs, under each weight row; ([B], [B])."""
    rp = weighted_midranks(pred, weights)
    positive = y > 0.5
    n_pos = weights[:, positive].sum(1)
    n_neg = weights[:, ~positive].sum(1)
    rank_sum = (weights[:, positive] * rp[:, positive]).sum(1)
    return rank_sum - n_pos * (n_pos + 1) / 2, n_pos * n_neg


def fold_scores(
    y: np.ndarray, pred: np.ndarray, fold: np.ndarray, weights: np.ndarray, task: str
) -> np.ndarray:
    """The fold-wise score of out-of-fold predictions ``pred`` [n] (``fold`` [n]: the outer test
    fold of each row) under each weight row of ``weights`` [B, n]; [B].

    Regression: sum_f w_f rho_f / sum_f w_f over the folds whose rho is defined (w_f = the fold's
    weight; rho_f its weighted Spearman). Classification: sum_f U_f / sum_f pairs_f (the AUROC of
    the positive-negative pairs inside a fold). Under H0 (labels independent of the activations)
    the mean is 0 / 0.5 at any n. Measured (``benchmarks/probe_stats.py``, noise probes, 5 x 5
    nested folds): mean -0.005 (MC SE 0.005, 1,000 replications) at 80 items, d = 16, and +0.002
    (0.004, 400) at 392 items, d = 512, where the pooled out-of-fold Spearman reads -0.146
    (0.004) and -0.047 (0.004); the permutation p on it has size 0.037 (0.006) and 0.070 (0.013)
    at alpha = .05 (99 permutations; exact by exchangeability, the rest is Monte-Carlo error).
    At 300 items, d = 1536 (d > n): +0.0054 (0.0020) in a first 1,600 replications, then +0.0010
    (0.0009) in 8,000 fresh ones (all 9,600: +0.0017, 0.0008), pooled -0.049 (0.001); size of
    ``p_perm`` 0.061 (0.006), then 0.054 (0.003). The mean is 0 by construction, not only by
    measurement: a test fold's predictions do not change when its labels do, and permuting its
    feature rows permutes its predictions alike (tests/test_probes_sweep.py, at d < n and d > n),
    so each fold's rho correlates an exchangeable vector with fixed labels."""
    folds = [np.flatnonzero(fold == f) for f in np.unique(fold)]
    if task == "regression":
        total = np.zeros(len(weights))
        acc = np.zeros(len(weights))
        for rows in folds:
            w = weights[:, rows]
            rho = weighted_scores(y[rows], pred[rows], w, task)
            ok = np.isfinite(rho)
            acc += np.where(ok, w.sum(1) * np.where(ok, rho, 0.0), 0.0)
            total += np.where(ok, w.sum(1), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, acc / np.where(total > 0, total, 1.0), np.nan)
    wins = np.zeros(len(weights))
    pairs = np.zeros(len(weights))
    for rows in folds:
        u, m = _pair_wins(y[rows], pred[rows], weights[:, rows])
        wins, pairs = wins + u, pairs + m
    with np.errstate(invalid="ignore", divide="ignore"):
        return wins / pairs


def one_feature_refit_scores(
    y: np.ndarray, x: np.ndarray, fold: np.ndarray, weights: np.ndarray, task: str
) -> np.ndarray:
    """``fold_scores`` of a probe on ONE feature ``x`` [n], refitted under each weight row of
    ``weights`` [B, n]. A one-feature ridge (standardised, with intercept, any alpha) ranks a
    test fold by ``sign(b) * x``, the sign of the weighted covariance of x and y on the other
    folds, so its refit under bootstrap weights is exact and costs one covariance per fold;
    holding the fitted predictions fixed instead misses the sign flips that a weak baseline's
    refits make (measured: a bootstrap SD of 0.064 where the sampling SD was 0.090)."""
    acc = np.zeros(len(weights))
    total = np.zeros(len(weights))
    for f in np.unique(fold):
        test, train = fold == f, fold != f
        w = weights[:, train]
        size = w.sum(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            mx = (w * x[train]).sum(1, keepdims=True) / size
            my = (w * y[train]).sum(1, keepdims=True) / size
        sign = np.sign((w * (x[train] - mx) * (y[train] - my)).sum(1))
        sign = np.where(np.isfinite(sign), sign, 0.0)
        wt = weights[:, test]
        if task == "regression":
            rho = sign * weighted_scores(y[test], x[test], wt, task)
            ok = np.isfinite(rho) & (sign != 0)
            acc += np.where(ok, wt.sum(1) * np.where(ok, rho, 0.0), 0.0)
            total += np.where(ok, wt.sum(1), 0.0)
        else:
            u, pairs = _pair_wins(y[test], x[test], wt)
            acc += np.where(sign > 0, u, np.where(sign < 0, pairs - u, pairs / 2))
            total += pairs
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, acc / np.where(total > 0, total, 1.0), np.nan)


def score(y: np.ndarray, pred: np.ndarray, task: str, fold: np.ndarray | None = None) -> float:
    """Unweighted score (Spearman rho or AUROC); fold-wise when ``fold`` [n] is given."""
    weights = np.ones((1, len(y)))
    if fold is None:
        return float(weighted_scores(y, pred, weights, task)[0])
    return float(fold_scores(y, pred, fold, weights, task)[0])


def score_columns(y: np.ndarray, preds: np.ndarray, task: str, fold: np.ndarray) -> np.ndarray:
    """Fold-wise score (``fold_scores`` with unit weights) of each column of ``preds`` [n, P]
    against the matching column of ``y`` [n, P] (or [n]), all columns at once; [P]."""
    y = np.broadcast_to(y if y.ndim == 2 else y[:, None], preds.shape)
    acc = np.zeros(preds.shape[1])
    total = np.zeros(preds.shape[1])
    for f in np.unique(fold):
        rows = fold == f
        rp = st.rankdata(preds[rows], axis=0)
        if task == "regression":
            ry = st.rankdata(y[rows], axis=0)
            ry, rp = ry - ry.mean(0), rp - rp.mean(0)
            var = (ry**2).sum(0) * (rp**2).sum(0)
            ok = var > 0
            rho = (ry * rp).sum(0) / np.sqrt(np.where(ok, var, 1.0))
            acc += np.where(ok, rows.sum() * rho, 0.0)
            total += np.where(ok, rows.sum(), 0.0)
        else:
            positive = y[rows] > 0.5
            n_pos = positive.sum(0)
            acc += (rp * positive).sum(0) - n_pos * (n_pos + 1) / 2
            total += n_pos * (rows.sum() - n_pos)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, acc / np.where(total > 0, total, 1.0), np.nan)


def group_counts(n_groups: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of ``n_groups`` items is drawn in each of ``n_boot`` replicates, [B, G]."""
    draws = rng.integers(0, n_groups, size=(n_boot, n_groups))
    counts = np.zeros((n_boot, n_groups))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1)
    return counts


def bootstrap_scores(
    y: np.ndarray,
    pred: np.ndarray,
    group_codes: np.ndarray,
    counts: np.ndarray,
    task: str,
    fold: np.ndarray,
) -> np.ndarray:
    """Bootstrap-over-items replicates of the fold-wise score: ``counts`` [B, G] from
    ``group_counts``, ``group_codes`` [n] integer item index of each sample, ``fold`` [n] the
    outer test fold of each row. Returns [B]."""
    return fold_scores(y, pred, fold, counts[:, group_codes], task)


def percentile_ci(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates (NaN replicates, e.g. one-class AUROC, dropped)."""
    finite = replicates[np.isfinite(replicates)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return float(lo), float(hi)
