"""probes.layer_sweep: planted signal, no leakage, controls, bootstrap and bad input."""

import numpy as np
import pytest
import scipy.stats as st
import torch
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold

from probes import sweep
from probes.checks import grouped_folds
from probes.controls import permuted_labels
from probes.layer_sweep import cv_predictions
from probes.metrics import bootstrap_scores, group_counts

FAST = dict(cv=4, inner_cv=3, n_permutations=39, n_boot=200, device="cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _planted(n_items=240, samples=2, d=16, noise=1.0, seed=0):
    """Site resid_post.1 carries y in one feature with Pearson r = 1/sqrt(1 + noise^2)."""
    rng = np.random.default_rng(seed)
    y_item = rng.normal(size=n_items)
    features = {}
    for layer in range(3):
        X_item = rng.normal(size=(n_items, d))
        if layer == 1:
            X_item[:, 0] = y_item + noise * rng.normal(size=n_items)
        features[f"resid_post.{layer}|prompt_end"] = np.repeat(X_item, samples, axis=0)
    return features, np.repeat(y_item, samples), np.repeat(np.arange(n_items), samples)


def test_planted_signal_found_only_where_planted():
    features, y, groups = _planted()
    table = sweep(features, y, groups, pca_dims=[2], **FAST).set_index("site")
    truth = 6 / np.pi * np.arcsin(1 / np.sqrt(2) / 2)  # Spearman of a bivariate normal, r = 0.707
    hit = table.loc["resid_post.1"]
    assert abs(hit["score"] - truth) < 0.08
    assert hit["score_lo"] < truth < hit["score_hi"]
    assert hit["score_minus_null"] > 0.5 and hit["p_perm"] <= 1 / 40
    assert hit["r2"] > 0.3
    for site in ("resid_post.0", "resid_post.2"):
        row = table.loc[site]
        assert abs(row["score_minus_null"]) < 0.15 and row["p_perm"] > 0.05
    # family-wise p: the planted site beats every site's null maximum; none is below its own p_perm
    assert hit["p_fwe"] <= 1 / 40 and (table["p_fwe"] >= table["p_perm"]).all()
    assert list(table["position"].unique()) == ["prompt_end"]
    assert table.loc["resid_post.1", "depth"] == 0.5 and table["n"].eq(480).all()
    assert table["n_groups"].eq(240).all() and "score_pca2" in table


def test_family_wise_p_is_the_max_statistic_over_keys():
    rng = np.random.default_rng(5)
    groups = np.arange(120)
    y = rng.normal(size=120)
    features = {
        f"resid_post.{k}|prompt_end": rng.normal(size=(120, 4)) for k in range(8)
    }  # no signal
    kw = dict(FAST, n_permutations=59, n_boot=0, n_random_dims=0)
    table = sweep(features, y, groups, **kw)
    one = {
        key: sweep({key: X}, y, groups, **kw) for key, X in features.items()
    }  # same permutations
    assert np.allclose(table["p_perm"], [one[k]["p_perm"].iloc[0] for k in features])
    # by hand: the same 59 permutations (the sweep's seeded draws), each key refitted, fold-wise
    # Spearman of each permuted fit (scipy inside each outer test fold, weighted by fold size),
    # the max over keys per permutation, then the usual (1 + #) / (1 + n)
    perms = permuted_labels(y, groups, None, 59, np.random.default_rng(0))
    folds = grouped_folds(groups, 4, 3, y, "regression", 0)

    def foldwise(truth, pred):
        return sum(
            len(test) * st.spearmanr(truth[test], pred[test])[0] for _, test, _ in folds
        ) / len(truth)

    null = np.max(
        [
            [foldwise(perms[:, j], oof[:, j]) for j in range(59)]
            for oof in (
                cv_predictions(X, perms, folds, np.logspace(-2, 4, 10), device="cpu")[0][0]
                for X in features.values()
            )
        ],
        axis=0,
    )
    want = [(1 + (null >= sc).sum()) / 60 for sc in table["score"]]
    np.testing.assert_allclose(table["p_fwe"], want)
    assert table["p_fwe"].min() > 0.05  # no signal anywhere: the best of 8 is not significant


def test_float32_sweep_matches_float64():
    features, y, groups = _planted(n_items=120, d=64)
    kw = dict(FAST, n_permutations=0, n_boot=0)
    t64 = sweep(features, y, groups, **kw)
    t32 = sweep(features, y, groups, dtype="float32", **kw)
    np.testing.assert_allclose(t32["score"], t64["score"], atol=1e-3)
    with pytest.raises(ValueError, match="dtype='float16'"):
        sweep(features, y, groups, dtype="float16", **kw)


def test_float32_with_fewer_rows_than_features_chooses_float64s_alphas():
    rng = np.random.default_rng(0)  # n < d: near-interpolation, where float32 chose other alphas
    X = rng.normal(size=(120, 600)) * rng.uniform(0.1, 5, 600)
    Z = (X - X.mean(0)) / X.std(0)
    y = Z[:, :100] @ rng.normal(size=100) * 0.1 + 0.01 * rng.normal(size=120)
    folds = grouped_folds(np.arange(120), 5, 5, y, "regression", 0)
    alphas = np.logspace(-2, 4, 10)
    o64, c64 = cv_predictions(X, y[:, None], folds, alphas, device="cpu")
    o32, c32 = cv_predictions(X, y[:, None], folds, alphas, device="cpu", dtype="float32")
    np.testing.assert_array_equal(c32[0], c64[0])
    np.testing.assert_allclose(o32[0], o64[0], atol=1e-9)


def test_classification_sweep_uses_auroc():
    features, y, groups = _planted(n_items=200, samples=1)
    labels = (y > 0).astype(float)
    table = sweep(features, labels, groups, task="classification", **FAST).set_index("site")
    assert (table["metric"] == "auroc").all()
    assert (
        table.loc["resid_post.1", "score"] > 0.75 and table.loc["resid_post.1", "p_perm"] <= 1 / 40
    )
    assert abs(table.loc["resid_post.0", "score"] - 0.5) < 0.12


def test_no_leakage_item_identity_target():
    """y = item identity with 4 duplicated samples per item: any fold that split an item would let
    the probe memorise it. Grouped CV scores ~0; the same probe with plain KFold scores high."""
    rng = np.random.default_rng(1)
    n_items, samples = 60, 4
    groups = np.repeat(np.arange(n_items), samples)
    y = rng.permutation(n_items).astype(float)[groups]
    X = rng.normal(size=(n_items, 80))[groups] + 1e-3 * rng.normal(size=(n_items * samples, 80))
    folds = grouped_folds(groups, 5, 3, y, "regression", seed=0)
    for train, test, _ in folds:
        assert not set(groups[train]) & set(groups[test])
    table = sweep({"resid_post.0": X}, y, groups, **FAST)
    assert abs(table.loc[0, "score"]) < 0.3
    leaky = [
        (tr, te, [np.arange(len(tr))[i::3] for i in range(3)])
        for tr, te in KFold(5, shuffle=True, random_state=0).split(X)
    ]
    oof, _ = cv_predictions(X, y[:, None], leaky, np.logspace(-2, 4, 10), device="cpu")
    assert st.spearmanr(oof[0][:, 0], y)[0] > 0.9


@pytest.mark.parametrize("d", [20, 400])  # more training rows than features, and fewer (Gram)
def test_test_fold_predictions_ignore_test_labels_and_follow_their_rows(d):
    """The two facts that make the fold-wise score's H0 mean exactly 0 at any n and d: a test
    fold's predictions do not change when its labels do (the folds, the alpha and the fit see
    only the training rows; the permutation columns fitted in the same batch do not leak
    either), and permuting a test fold's feature rows permutes its predictions alike (each row
    is predicted on its own). Given both, under H0 each fold's rho is a rank correlation of an
    exchangeable vector with fixed labels: mean 0."""
    rng = np.random.default_rng(3)
    n = 150
    X, y = rng.normal(size=(n, d)), rng.normal(size=n)
    kw = dict(cv=5, inner_cv=5, n_permutations=19, n_boot=0, n_random_dims=0, device="cpu")
    _, preds = sweep({"resid_post.0": X}, y, np.arange(n), return_predictions=True, **kw)
    for f in np.unique(preds["fold"]):
        test = np.flatnonzero(preds["fold"] == f)
        y2, X2 = y.copy(), X.copy()
        y2[test] = rng.normal(size=len(test)) * 10
        order = rng.permutation(test)
        X2[test] = X[order]
        _, p2 = sweep({"resid_post.0": X2}, y2, np.arange(n), return_predictions=True, **kw)
        assert (p2["fold"] == preds["fold"]).all()  # the folds do not depend on y
        np.testing.assert_allclose(
            p2["oof"].to_numpy()[test], preds["oof"].to_numpy()[order], rtol=1e-9, atol=1e-12
        )
        train = np.setdiff1d(np.arange(n), test)
        changed = np.abs(p2["oof"].to_numpy()[train] - preds["oof"].to_numpy()[train]).max()
        assert changed > 1e-6  # the check can fail: other folds train on the changed labels


def test_baseline_rows_and_key_without_position():
    features, y, groups = _planted(n_items=120, samples=1)
    base = {"baseline:prompt_tokens": (y + np.random.default_rng(0).normal(size=len(y)))[:, None]}
    table = sweep(
        {"resid_post.1": features["resid_post.1|prompt_end"]},
        y,
        groups,
        baseline_features=base,
        **FAST,
    )
    assert list(table["site"]) == ["resid_post.1", "baseline:prompt_tokens"]
    assert list(table["position"]) == ["", ""]
    assert table.loc[1, "score"] > 0.5  # the baseline carries y


def test_permuted_labels_keep_items_and_strata():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 3)
    y = rng.normal(size=90)
    strata = (np.arange(30) % 2)[groups]
    out = permuted_labels(y, groups, strata, 20, rng)
    for k in range(20):
        col = out[:, k]
        assert sorted(col) == sorted(y)  # marginal kept
        for g in range(30):  # every item receives another item's samples, in order ...
            src = [h for h in range(30) if np.array_equal(y[groups == h], col[groups == g])]
            assert len(src) == 1 and src[0] % 2 == g % 2  # ... from its own stratum
    assert not np.allclose(out[:, 0], y)


def test_permuted_labels_exchange_items_of_any_size():
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 5, 60)  # censored samples drop out: items have 1-4 rows
    groups = np.repeat(np.arange(60), sizes)
    shuffle = rng.permutation(len(groups))
    groups = groups[shuffle]
    y_item, strata_item = rng.normal(size=60), np.arange(60) % 2
    y, strata = y_item[groups], strata_item[groups]
    out = permuted_labels(y, groups, strata, 200, rng)
    kept = 0
    for k in range(200):
        got = {g: np.unique(out[groups == g, k]) for g in range(60)}
        assert all(len(v) == 1 for v in got.values())  # a per-item label stays per item
        donors = [int(np.flatnonzero(y_item == v[0])[0]) for v in got.values()]
        assert sorted(donors) == list(range(60))  # a permutation of the items ...
        assert all(
            strata_item[d] == strata_item[g] for g, d in enumerate(donors)
        )  # ... within strata
        kept += sum(d == g for g, d in enumerate(donors))
    assert kept / (200 * 60) < 0.06  # ~1/30 per item (30 items per stratum), not stuck by size
    with pytest.raises(ValueError, match="single item"):
        permuted_labels(np.arange(4.0), np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1]), 3, rng)


def test_bootstrap_matches_explicit_resamples():
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(40), 2)
    y = np.round(rng.normal(size=80), 1)  # ties
    pred = y + rng.normal(size=80)
    counts = group_counts(40, 5, rng)
    one_fold = np.zeros(80, dtype=int)  # one fold: the plain (pooled) score
    reg = bootstrap_scores(y, pred, groups, counts, "regression", one_fold)
    cls = bootstrap_scores((y > 0).astype(float), pred, groups, counts, "classification", one_fold)
    for b in range(5):
        idx = np.concatenate(
            [np.flatnonzero(groups == g).repeat(int(c)) for g, c in enumerate(counts[b])]
        )
        assert reg[b] == pytest.approx(st.spearmanr(y[idx], pred[idx])[0], abs=1e-12)
        assert cls[b] == pytest.approx(roc_auc_score(y[idx] > 0, pred[idx]), abs=1e-12)


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda f, y, g: (f, y, np.zeros_like(g)), "distinct items"),
        (lambda f, y, g: (f, np.ones_like(y), g), "constant"),
        (lambda f, y, g: (f, np.where(np.arange(len(y)) == 7, np.nan, y), g), r"1 NaN.*\[7\]"),
        (
            lambda f, y, g: (
                {k: np.where(np.arange(len(y))[:, None] == 3, np.nan, X) for k, X in f.items()},
                y,
                g,
            ),
            r"16 NaN/inf value\(s\) in 1 row\(s\) \[3\]",
        ),
        (lambda f, y, g: ({"a": next(iter(f.values()))[:-1]}, y, g), "rows but y/groups have"),
        (lambda f, y, g: (f, y, g[:-1]), "one entry per sample"),
    ],
)
def test_bad_input(mutate, match):
    features, y, groups = _planted(n_items=20, samples=1)
    f, yy, gg = mutate(features, y, groups)
    with pytest.raises(ValueError, match=match):
        sweep(f, yy, gg, **FAST)


def test_fold_without_enough_items_for_inner_cv():
    features, y, groups = _planted(n_items=5, samples=2)
    with pytest.raises(ValueError, match="inner_cv"):
        sweep(features, y, groups, cv=5, inner_cv=5, n_permutations=0, n_boot=0, device="cpu")
