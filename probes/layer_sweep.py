"""Layer x position sweeps of linear probes with grouped, nested cross-validation and controls.

Protocol for every feature key (one site at one position):

1. Outer ``GroupKFold(cv, shuffle=True, random_state=seed)``: all samples of an item (group) fall in
   one fold, so duplicated samples (e.g. the ``prompt_end`` activation repeated for every sampled
   trace) never straddle training and test.
2. Inside each outer training part: features standardised on that part (``StandardScaler``), then
   alpha chosen from ``alphas`` by an inner ``GroupKFold(inner_cv)`` maximising mean R^2, then ridge
   refitted on the whole training part — exactly ``make_pipeline(StandardScaler(),
   RidgeCV(alphas, cv=inner_splits))`` (the inner folds reuse the outer-part scaling, as that
   pipeline does). Classification (0/1 labels) uses the same ridge on the labels (a linear
   probability model, selected by R^2 = Brier skill) and is scored by AUROC of its decision values;
   this keeps the permutation null closed-form (``LinearProbe(task="classification")`` is the
   logistic estimator for fitting single probes and directions).
3. Scores, fold by fold (``probes.metrics.fold_scores``): ``score`` = the Spearman rho inside
   each outer test fold, averaged over the folds (regression), or the AUROC of the positive-
   negative pairs inside a fold (classification) — never the score of the pooled out-of-fold
   predictions, whose folds' intercepts bias it negative under H0 (-0.125 at 80 items);
   ``r2`` = R^2 of the pooled out-of-fold predictions (descriptive); ``score_lo/score_hi`` = 95%
   percentile bootstrap over items (resampling whole items) of the fold-wise score of the fixed
   out-of-fold predictions (it leaves out the refitting noise: the selection-adjusted score of
   ``probes.crossfit.best_site`` is the one with a measured coverage).
4. Nulls (see ``probes.controls``): ``p_perm`` (``n_permutations`` within-strata group
   permutations, each re-running step 2 — alpha included — from the same per-fold
   decompositions), ``null_mean`` (the mean score over those permutations) and
   ``score_minus_null``. This is not Hewitt & Liang's control task: with grouped CV no item's
   label can be memorised across folds, so a permuted-label probe measures the null, not the
   probe's capacity to memorise; the names say what is computed. ``random_score`` is the probe on
   ``n_random_dims`` random projections of the site; ``p_fwe``, the family-wise p over the
   sweep's feature keys (Westfall & Young max-statistic: every key is scored on the same
   permutations, so ``p_fwe`` compares a key's score with the best score of any key under each
   permutation) — the p to quote for "the best layer encodes it" after looking at every layer
   (``probes.store_sweep`` takes the maximum over every position as well).
5. Optional ``pca_dims``: ``score_pca{k}`` = the same probe on the top-k principal components of
   the standardised training part (a truncation of the same decomposition).

Default alphas: ``np.logspace(-2, 4, 10)`` — on standardised features of width ~10^3 this spans
near-interpolation to strong shrinkage; widen it if the chosen ``alpha`` sits on an end.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import r2_score

from experiments.errors import InputError
from probes.checks import check_features, check_groups, check_target, check_task, grouped_folds
from probes.controls import permuted_labels, random_projection
from probes.metrics import (
    METRICS,
    bootstrap_scores,
    group_counts,
    percentile_ci,
    score,
    score_columns,
)
from probes.ridge import RidgeBasis, as_tensor, fit_dtype, nested_ridge_predict, resolve_device

DEFAULT_ALPHAS = np.logspace(-2, 4, 10)
LAYER_PATTERN = re.compile(r"\.(\d+)(?:\.(\d+))?$")  # kind.layer, or kind.layer.head


def split_key(key: str) -> tuple[str, str]:
    """``"resid_post.3|prompt_end"`` -> (``"resid_post.3"``, ``"prompt_end"``); no ``|`` -> (key, "")."""
    site, _, position = key.partition("|")
    return site, position


def layer_of(site: str) -> float:
    """Layer number of a site name (``resid_post.12`` -> 12; a head's site ``attn_z.12.3`` ->
    12), NaN when there is none."""
    match = LAYER_PATTERN.search(site)
    return float(match.group(1)) if match else float("nan")


def head_of(site: str) -> float:
    """Head number of a per-head site name (``attn_z.12.3`` -> 3), NaN for the others."""
    match = LAYER_PATTERN.search(site)
    return float(match.group(2)) if match and match.group(2) is not None else float("nan")


def cv_predictions(
    X: np.ndarray,
    Y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]],
    alphas: np.ndarray,
    *,
    standardize: bool = True,
    device: str | torch.device | None = None,
    ranks: Sequence[int | None] = (None,),
    dtype: str = "float64",
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Out-of-fold predictions of nested-CV ridge for every label column of ``Y`` [n, P].

    ``X`` [n, d], or [K, n, d] for K feature sets on the same rows (e.g. every layer of a model),
    fitted as one batch. Returns per rank: out-of-fold predictions [(K,) n, P] and chosen alpha
    indices [(K,) n_folds, P]."""
    dev = resolve_device(device)
    tdtype = getattr(torch, fit_dtype(dtype, folds, X.shape[-1]))
    Xt, Yt = as_tensor(X, dev, tdtype), as_tensor(Y, dev, tdtype)
    alphas_t = as_tensor(alphas, dev, tdtype)
    batch = X.shape[:-2]
    oof = [np.empty(batch + Y.shape) for _ in ranks]
    chosen = [np.empty(batch + (len(folds), Y.shape[1]), dtype=np.int64) for _ in ranks]
    for k, (train, test, inner) in enumerate(folds):
        train_t = torch.as_tensor(train, device=dev)
        basis = RidgeBasis(Xt[..., train_t, :], standardize=standardize)
        preds, best = nested_ridge_predict(
            basis,
            Yt[train_t],
            Xt[..., torch.as_tensor(test, device=dev), :],
            inner,
            alphas_t,
            ranks=ranks,
        )
        for i in range(len(ranks)):
            oof[i][..., test, :] = preds[i].double().cpu().numpy()
            chosen[i][..., k, :] = best[i].cpu().numpy()
    return oof, chosen


def sweep(
    features: Mapping[str, np.ndarray],
    y: np.ndarray,
    groups: np.ndarray,
    *,
    task: str = "regression",
    cv: int = 5,
    inner_cv: int | None = None,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    n_permutations: int = 100,
    strata: np.ndarray | None = None,
    n_boot: int = 1000,
    n_random_dims: int = 8,
    pca_dims: Sequence[int] | None = None,
    n_layers: int | None = None,
    seed: int = 0,
    baseline_features: Mapping[str, np.ndarray] | None = None,
    standardize: bool = True,
    device: str | torch.device | None = None,
    dtype: str = "float64",
    null_labels: np.ndarray | None = None,
    return_predictions: bool = False,
    return_nulls: bool = False,
) -> pd.DataFrame | tuple:
    """Probe every feature key and return one row per key (see the module docstring).

    features: ``{"site|position" or "site": X [n, d]}``, rows aligned with ``y`` [n] and
    ``groups`` [n] (item ids; samples of one item share a group). ``strata`` [n] (optional,
    constant within items, e.g. the task) restricts the null permutations; None = one
    stratum. ``baseline_features``: trivial predictors (e.g. ``{"baseline:prompt_tokens": [n, 1]}``)
    probed the same way, appended as rows. ``n_layers``: depth of the model, for
    ``depth = layer / (n_layers - 1)`` (default: 1 + the largest layer among the keys).
    ``dtype``: "float64" (default; equals scikit-learn to 1e-6) or "float32" (about twice as fast
    on CPU where the training parts have more rows than features; scores agree with float64 to
    ~1e-4 — measured in benchmarks/probes.py; with fewer rows than features it runs float64).
    ``null_labels`` [n, P]: permuted labels to use as the null instead of drawing
    ``n_permutations`` (a caller whose family spans several sweeps draws them once, at the item
    level, and takes its own maximum over the ``return_nulls`` scores).

    Columns: site, position, layer, depth, metric, score, score_lo, score_hi, r2, null_mean,
    score_minus_null, p_perm, p_fwe, random_score, alpha (median over outer folds of the chosen
    alpha), n, n_groups, and score_pca{k} per ``pca_dims``. ``return_predictions=True`` adds the
    out-of-fold predictions as a long table (key, site, position, row, group, fold, y, oof);
    ``return_nulls=True`` adds the null scores of the feature keys, a DataFrame [keys, P].
    """
    check_task(task)
    y = check_target(y, task)
    n = len(y)
    codes = check_groups(groups, n, cv)
    check_features(features, n)
    if baseline_features:
        check_features(baseline_features, n, what="baseline_features")
    inner_cv = cv if inner_cv is None else inner_cv
    alphas = np.asarray(alphas, dtype=np.float64)
    if alphas.ndim != 1 or len(alphas) == 0 or (alphas <= 0).any():
        raise InputError("alphas must be a non-empty 1-D sequence of positive penalties")
    strata_codes = _strata_codes(strata, codes, n)
    rng = np.random.default_rng(seed)
    folds = grouped_folds(codes, cv, inner_cv, y, task, seed)
    fold = np.empty(n, dtype=np.int64)
    for k, (_, test, _) in enumerate(folds):
        fold[test] = k
    if null_labels is None:
        null_labels = permuted_labels(y, codes, strata_codes, n_permutations, rng)
    elif np.shape(null_labels)[0] != n or np.ndim(null_labels) != 2:
        raise InputError(
            f"null_labels must be [n, P] with n = {n} rows, got {np.shape(null_labels)}"
        )
    Y = np.column_stack([y, null_labels])
    counts = group_counts(int(codes.max()) + 1, n_boot, rng) if n_boot else None
    projection_rng = np.random.default_rng(seed + 1)
    ranks: list[int | None] = [None, *(pca_dims or [])]

    keys = list(features) + list(baseline_features or {})
    rows, predictions, nulls = [], [], {}
    for key in keys:
        X = np.asarray(features[key] if key in features else baseline_features[key])  # type: ignore[index]
        oof, chosen = cv_predictions(
            X, Y, folds, alphas, standardize=standardize, device=device, ranks=ranks, dtype=dtype
        )
        scores = score_columns(Y, oof[0], task, fold)
        observed, null = scores[0], scores[1:]
        if key in features:
            nulls[key] = null
        site, position = split_key(key)
        row = {
            "site": site,
            "position": position,
            "layer": layer_of(site),
            "metric": METRICS[task],
            "score": observed,
            "score_lo": float("nan"),
            "score_hi": float("nan"),
            "r2": float(r2_score(y, oof[0][:, 0])),
            "null_mean": float(null.mean()) if len(null) else float("nan"),
            "p_perm": _p_upper(observed, null),
            "random_score": float("nan"),
            "alpha": float(np.median(alphas[chosen[0][:, 0]])),
            "n": n,
            "n_groups": int(codes.max()) + 1,
        }
        row["score_minus_null"] = row["score"] - row["null_mean"]
        if counts is not None:
            row["score_lo"], row["score_hi"] = percentile_ci(
                bootstrap_scores(y, oof[0][:, 0], codes, counts, task, fold)
            )
        if n_random_dims and X.shape[1] > n_random_dims:
            rand_oof, _ = cv_predictions(
                random_projection(X, n_random_dims, projection_rng),
                y[:, None],
                folds,
                alphas,
                standardize=standardize,
                device=device,
                dtype=dtype,
            )
            row["random_score"] = score(y, rand_oof[0][:, 0], task, fold)
        for k, pred in zip(pca_dims or [], oof[1:], strict=True):
            row[f"score_pca{k}"] = score(y, pred[:, 0], task, fold)
        rows.append(row)
        if return_predictions:
            predictions.append(
                pd.DataFrame(
                    {
                        "key": key,
                        "site": site,
                        "position": position,
                        "row": np.arange(n),
                        "group": np.asarray(groups),
                        "fold": fold,
                        "y": y,
                        "oof": oof[0][:, 0],
                    }
                )
            )
    table = pd.DataFrame(rows)
    null_table = pd.DataFrame.from_dict(nulls, orient="index")
    is_feature = np.arange(len(keys)) < len(features)  # baselines are not in the family
    table["p_fwe"] = np.where(
        is_feature, family_wise_p(table["score"], null_table.to_numpy()), np.nan
    )
    depth_of = n_layers if n_layers is not None else table["layer"].max() + 1
    table.insert(
        3, "depth", table["layer"] / (depth_of - 1) if depth_of and depth_of > 1 else np.nan
    )
    table = table[COLUMNS + [c for c in table.columns if c not in COLUMNS]]
    out: list = [table]
    if return_predictions:
        out.append(pd.concat(predictions, ignore_index=True))
    if return_nulls:
        out.append(null_table)
    return out[0] if len(out) == 1 else tuple(out)


COLUMNS = [
    "site",
    "position",
    "layer",
    "depth",
    "metric",
    "score",
    "score_lo",
    "score_hi",
    "r2",
    "null_mean",
    "score_minus_null",
    "p_perm",
    "p_fwe",
    "random_score",
    "alpha",
    "n",
    "n_groups",
]


def _p_upper(observed: float, null: np.ndarray) -> float:
    """(1 + #{null >= observed}) / (1 + len(null)); NaN without a null."""
    if len(null) == 0:
        return float("nan")
    return float((1 + (null >= observed).sum()) / (1 + len(null)))


def family_wise_p(scores: Sequence[float], nulls: np.ndarray) -> np.ndarray:
    """Westfall-Young max-T p of each score against ``nulls`` [K, P] (the family's null scores
    under the same P permutations): (1 + #{j: max_k nulls[k, j] >= score}) / (1 + P)."""
    scores = np.asarray(scores, dtype=float)
    if nulls.size == 0:
        return np.full(len(scores), np.nan)
    max_null = np.nanmax(nulls, axis=0)
    return (1 + (max_null[None, :] >= scores[:, None]).sum(1)) / (1 + len(max_null))


def _strata_codes(strata: np.ndarray | None, codes: np.ndarray, n: int) -> np.ndarray | None:
    """Integer stratum per sample, checked to be constant within each item."""
    if strata is None:
        return None
    strata = np.asarray(strata)
    if strata.shape != (n,):
        raise InputError(
            f"strata must have one entry per sample (shape ({n},)), got {strata.shape}"
        )
    _, s_codes = np.unique(strata, return_inverse=True)
    per_group = pd.Series(s_codes).groupby(codes).nunique()
    if (per_group > 1).any():
        raise InputError(
            f"strata vary within {int((per_group > 1).sum())} item(s); a stratum "
            "(e.g. the task) must be constant across the samples of an item"
        )
    return s_codes
