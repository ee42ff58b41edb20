"""Input checks for probe sweeps: each error names the problem, where it is, and the fix."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.model_selection import GroupKFold

from experiments.errors import InputError, NotProbeable

TASKS = ("regression", "classification")


def check_task(task: str) -> None:
    if task not in TASKS:
        raise InputError(f"task={task!r} is unknown; use one of {TASKS}")


def check_target(y: np.ndarray, task: str) -> np.ndarray:
    """1-D finite, non-constant float target; binary 0/1 for classification."""
    y = np.array(y, dtype=np.float64)
    if y.ndim != 1:
        raise InputError(f"target y must be 1-D (one value per sample), got shape {y.shape}")
    bad = np.flatnonzero(~np.isfinite(y))
    if len(bad):
        raise InputError(
            f"target y has {len(bad)} NaN/inf value(s) at row(s) {bad[:10].tolist()}; drop those "
            "samples (and their activation rows) or impute the target first"
        )
    if np.ptp(y) == 0:
        raise NotProbeable(
            f"target y is constant ({y[0]!r}) over all {len(y)} samples; a probe "
            "needs a target that varies — check the target column and the item filter"
        )
    if task == "classification" and not np.isin(y, (0.0, 1.0)).all():
        raise InputError(
            "classification needs a binary 0/1 target; threshold or encode y first, "
            "or use task='regression'"
        )
    return y


def check_features(features: Mapping[str, np.ndarray], n: int, *, what: str = "features") -> None:
    """Every array is [n, d] with finite values."""
    if len(features) == 0:
        raise InputError(
            f"{what} is empty; pass a mapping from 'site|position' keys to [n, d] arrays"
        )
    for key, X in features.items():
        X = np.asarray(X)
        if X.ndim != 2:
            raise InputError(f"{what}[{key!r}] must be 2-D [n_samples, d], got shape {X.shape}")
        if X.shape[0] != n:
            raise InputError(
                f"{what}[{key!r}] has {X.shape[0]} rows but y/groups have {n}; every feature "
                "array must have one row per sample, in the same order as y"
            )
        bad = ~np.isfinite(X)
        if bad.any():
            rows = np.flatnonzero(bad.any(1))
            cols = np.flatnonzero(bad.any(0))
            raise InputError(
                f"{what}[{key!r}] has {int(bad.sum())} NaN/inf value(s) in {len(rows)} row(s) "
                f"{rows[:10].tolist()} and {len(cols)} column(s) {cols[:10].tolist()}; "
                "re-capture those activations or drop those samples"
            )


def check_groups(groups: np.ndarray, n: int, cv: int) -> np.ndarray:
    """Integer item codes 0..G-1 [n]; at least ``cv`` items."""
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise InputError(
            f"groups must have one entry per sample (shape ({n},)), got {groups.shape}"
        )
    if groups.dtype.kind == "f" and np.isnan(groups).any():
        raise InputError(
            f"groups has {int(np.isnan(groups).sum())} NaN value(s); every sample needs an item id"
        )
    _, codes = np.unique(groups, return_inverse=True)
    n_groups = int(codes.max()) + 1
    if cv < 2:
        raise InputError(f"cv={cv}; cross-validation needs at least 2 folds")
    if n_groups < cv:
        raise InputError(
            f"only {n_groups} distinct items (groups) for {cv}-fold grouped cross-validation; "
            f"use cv <= {n_groups} or probe more items"
        )
    return codes


def grouped_folds(
    group_codes: np.ndarray, cv: int, inner_cv: int, y: np.ndarray, task: str, seed: int
) -> list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]]:
    """Outer GroupKFold folds, each with the inner folds of its training part.

    Returns ``[(train_idx, test_idx, inner_blocks)]`` where ``inner_blocks`` index the training
    rows (positions within ``train_idx``). Raises if any fold is empty, any training part has
    fewer than ``inner_cv`` items, or (classification) a training part has one class."""
    outer = GroupKFold(n_splits=cv, shuffle=True, random_state=seed)
    folds = []
    for k, (train, test) in enumerate(outer.split(np.zeros(len(group_codes)), groups=group_codes)):
        if len(test) == 0 or len(train) == 0:
            raise InputError(f"outer fold {k} is empty; use fewer folds (cv) than items")
        train_groups = group_codes[train]
        n_train_groups = len(np.unique(train_groups))
        if n_train_groups < inner_cv:
            raise InputError(
                f"outer fold {k} trains on {n_train_groups} items, fewer than inner_cv={inner_cv} "
                "needed to choose alpha; use fewer folds or more items"
            )
        if task == "classification" and len(np.unique(y[train])) < 2:
            raise InputError(
                f"outer fold {k} trains on one class only; balance the items or use fewer folds"
            )
        inner = GroupKFold(n_splits=inner_cv, shuffle=True, random_state=seed)
        blocks = [val for _, val in inner.split(np.zeros(len(train)), groups=train_groups)]
        folds.append((train, test, blocks))
    return folds
