"""Delete-one-item jackknife of a probe's fold-wise CV score, every deletion refitted exactly.

Deleting item g changes a fold's score in two ways: where g is a test item its rows leave the
fold's score; where g trains, the fold's ridge is refitted without it. The refit needs no new
decomposition: for a linear smoother with a fixed penalty (ridge with an unpenalised intercept,
hat matrix ``H`` on the training rows, test smoother ``S_te``), deleting the training rows G moves
the test predictions by ``-S_te[:, G] (I - H_GG)^{-1} r_G`` (``r`` the training residuals; the
same block-deletion identity ``probes.ridge`` uses for the inner folds). Alpha (chosen by the
fold's inner CV) and the standardisation scale are held at the fold's; the rest equals a refit
on the other rows (tested against explicit refits). A bootstrap that held the fitted
predictions fixed saw only the test side, and redoing the picks per deletion is not a smooth
statistic (its jackknife read 3.4x the SD): ``probes.crossfit`` holds each half's pick.
"""

from __future__ import annotations

import numpy as np
import torch

from probes.metrics import one_feature_refit_scores, score_columns, weighted_scores
from probes.ridge import (
    RidgeBasis,
    _filters,
    as_tensor,
    fit_dtype,
    nested_ridge_predict,
    resolve_device,
)


def deletion_weights(codes: np.ndarray, n_items: int) -> np.ndarray:
    """[G, n]: row g is 1 on every row except item g's (``codes`` [n]: item index of each row)."""
    return (codes[None, :] != np.arange(n_items)[:, None]).astype(np.float64)


def one_feature_jackknife(
    y: np.ndarray, x: np.ndarray, fold: np.ndarray, codes: np.ndarray, task: str
) -> tuple[float, np.ndarray]:
    """(score, score with each item deleted [G]) of a one-feature probe: its exact refit rule
    (``probes.metrics.one_feature_refit_scores``) under deletion weights."""
    n_items = int(codes.max()) + 1
    weights = np.vstack([np.ones(len(y)), deletion_weights(codes, n_items)])
    both = one_feature_refit_scores(y, x, fold, weights, task)
    return float(both[0]), both[1:]


def cv_jackknife(
    X: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]],
    alphas: np.ndarray,
    codes: np.ndarray,
    task: str,
    *,
    device: str | torch.device | None = None,
    dtype: str = "float64",
) -> tuple[np.ndarray, np.ndarray]:
    """Fold-wise score of nested-CV ridge on K feature sets ``X`` [K, n, d] and the same score
    with each item deleted: ([K], [K, G]). ``codes`` [n]: item index (0..G-1) of each row;
    ``folds`` grouped by item (``probes.checks.grouped_folds``)."""
    dev = resolve_device(device)
    tdtype = getattr(torch, fit_dtype(dtype, folds, X.shape[-1]))
    Xt = as_tensor(X, dev, tdtype)
    yt = as_tensor(y[:, None], dev, tdtype)
    alphas_t = as_tensor(alphas, dev, tdtype)
    K, n_items = X.shape[0], int(codes.max()) + 1
    num = np.zeros((K, n_items + 1))  # column 0: no deletion
    den = np.zeros((K, n_items + 1))
    for train, test, inner in folds:
        train_t = torch.as_tensor(train, device=dev)
        basis = RidgeBasis(Xt[:, train_t])
        X_test = Xt[:, torch.as_tensor(test, device=dev)]
        preds, best = nested_ridge_predict(basis, yt[train_t], X_test, inner, alphas_t)
        pred = preds[0][..., 0].double().cpu().numpy()  # [K, m]
        moved, trained = _deleted_predictions(
            basis, yt[train_t, 0], X_test, best[0][..., 0], alphas_t, codes[train]
        )
        y_te = y[test]
        m = len(test)
        # training side: the refitted predictions of this fold, one column per deleted item
        cols = (pred[:, :, None] + moved).transpose(1, 0, 2).reshape(m, -1)
        n_tr, d_tr = _parts(y_te, cols, task)
        num[:, 1 + trained] += n_tr.reshape(K, -1)
        den[:, 1 + trained] += d_tr.reshape(K, -1)
        # test side: this fold's score without each of its items; no deletion in column 0
        tested = np.unique(codes[test])
        weights = np.vstack([np.ones(m), deletion_weights(codes[test], n_items)[tested]])
        for k in range(K):
            n_te, d_te = _weighted_parts(y_te, pred[k], weights, task)
            num[k, 0] += n_te[0]
            den[k, 0] += d_te[0]
            num[k, 1 + tested] += n_te[1:]
            den[k, 1 + tested] += d_te[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return scores[:, 0], scores[:, 1:]


def _deleted_predictions(
    basis: RidgeBasis,
    y_train: torch.Tensor,
    X_test: torch.Tensor,
    alpha_index: torch.Tensor,
    alphas: torch.Tensor,
    train_codes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Change of the test predictions [K, m, G_train] when each training item is deleted, and
    the item indices [G_train] of those columns (block-deletion identity, fixed alpha)."""
    K = alpha_index.shape[0]
    h, f = _filters(basis.s, alphas, None)  # [K, A, r]
    rows = torch.arange(K, device=h.device)
    h, f = h[rows, alpha_index], f[rows, alpha_index]  # [K, r]
    n = y_train.shape[0]
    U = basis.U  # [K, n, r]
    yc = y_train - y_train.mean()
    C = U.mT @ yc  # [K, r]
    resid = yc - (U @ (h * C)[..., None])[..., 0]  # [K, n]
    smoother = (basis.project(X_test) * f[:, None, :]) @ U.mT + 1.0 / n  # [K, m, n]
    items, first, size = np.unique(train_codes, return_index=True, return_counts=True)
    order = np.argsort(train_codes, kind="stable")  # rows grouped by item, items ascending
    starts = np.r_[0, np.cumsum(size)[:-1]]
    moved = torch.zeros(smoother.shape[:2] + (len(items),), dtype=U.dtype, device=U.device)
    for b in np.unique(size):  # items with b rows each, solved as one batch
        which = np.flatnonzero(size == b)
        idx = torch.as_tensor(order[starts[which][:, None] + np.arange(b)], device=U.device)
        Ug = U[:, idx]  # [K, G_b, b, r]
        H = (Ug * h[:, None, None, :]) @ Ug.mT + 1.0 / n  # [K, G_b, b, b]
        eye = torch.eye(int(b), dtype=U.dtype, device=U.device)
        c = torch.linalg.solve(eye - H, resid[:, idx][..., None])[..., 0]  # [K, G_b, b]
        moved[:, :, torch.as_tensor(which, device=U.device)] = -torch.einsum(
            "kmgb,kgb->kmg", smoother[:, :, idx], c
        )
    return moved.double().cpu().numpy(), items


def _parts(y: np.ndarray, cols: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Numerator and denominator of one fold's contribution to the fold-wise score for each
    prediction column of ``cols`` [m, P]: (m * rho, m) or (pairs won, pairs)."""
    m = len(y)
    value = score_columns(y, cols, task, np.zeros(m, dtype=np.int64))
    if task == "regression":
        ok = np.isfinite(value)
        return np.where(ok, m * value, 0.0), np.where(ok, float(m), 0.0)
    pairs = float((y > 0.5).sum() * (y <= 0.5).sum())
    return np.nan_to_num(value) * pairs, np.full(value.shape, pairs)


def _weighted_parts(
    y: np.ndarray, pred: np.ndarray, weights: np.ndarray, task: str
) -> tuple[np.ndarray, np.ndarray]:
    """``_parts`` of one prediction vector under each weight row of ``weights`` [B, m]."""
    value = weighted_scores(y, pred, weights, task)
    if task == "regression":
        ok = np.isfinite(value)
        size = weights.sum(1)
        return np.where(ok, size * value, 0.0), np.where(ok, size, 0.0)
    positive = y > 0.5
    pairs = weights[:, positive].sum(1) * weights[:, ~positive].sum(1)
    return np.nan_to_num(value) * pairs, pairs
