"""The closed-form delete-one-item jackknife equals refitting without the item."""

import numpy as np
import pytest
import scipy.stats as st
from sklearn.metrics import roc_auc_score

from probes.checks import grouped_folds
from probes.crossfit import half_scores, half_splits
from probes.jackknife import cv_jackknife, one_feature_jackknife
from probes.layer_sweep import DEFAULT_ALPHAS, cv_predictions


def _refit_scores(X, y, codes, folds, alpha_index, task):
    """Fold-wise score with each item deleted, by explicit ridge refits: alpha and the
    standardisation scale held at the full training fold's, centring on the rows kept."""
    out = []
    for g in range(codes.max() + 1):
        num = den = 0.0
        for f, (train, test, _) in enumerate(folds):
            scale = X[train].std(0)
            tr, te = train[codes[train] != g], test[codes[test] != g]
            mean = X[tr].mean(0)
            Z = (X[tr] - mean) / scale
            alpha = DEFAULT_ALPHAS[alpha_index[f]]
            w = np.linalg.solve(Z.T @ Z + alpha * np.eye(X.shape[1]), Z.T @ (y[tr] - y[tr].mean()))
            pred = y[tr].mean() + (X[te] - mean) / scale @ w
            if task == "regression":
                num += len(te) * st.spearmanr(pred, y[te])[0]
                den += len(te)
            else:
                pairs = (y[te] == 1).sum() * (y[te] == 0).sum()
                num += roc_auc_score(y[te], pred) * pairs
                den += pairs
        out.append(num / den)
    return np.array(out)


@pytest.mark.parametrize(
    ("task", "d"), [("regression", 6), ("regression", 90), ("classification", 8)]
)
def test_deletion_scores_equal_explicit_refits(task, d):
    """Items of 1-3 rows each (samples of one prompt), d < n and d > n: every deletion score
    matches a refit without the item's rows to 1e-9."""
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 4, 40)
    codes = np.repeat(np.arange(40), sizes)
    latent = rng.standard_normal(40)[codes]
    y = (
        (latent > 0).astype(float)
        if task == "classification"
        else latent + 0.3 * rng.standard_normal(len(codes))
    )
    X = rng.standard_normal((2, len(codes), d))
    X[:, :, 0] += latent
    folds = grouped_folds(codes, 4, 3, y, task, seed=1)
    score, dropped = cv_jackknife(X, y, folds, DEFAULT_ALPHAS, codes, task, device="cpu")
    _, chosen = cv_predictions(X, y[:, None], folds, DEFAULT_ALPHAS, device="cpu")
    for k in range(2):
        want = _refit_scores(X[k], y, codes, folds, chosen[0][k, :, 0], task)
        np.testing.assert_allclose(dropped[k], want, atol=1e-9)
    assert np.ptp(dropped) > 1e-3  # deletions move the score: the check is not vacuous


def test_full_score_equals_the_fold_wise_score_of_the_nested_fit():
    rng = np.random.default_rng(4)
    y = rng.standard_normal(50)
    codes = np.arange(50)
    X = rng.standard_normal((1, 50, 5)) + 0.5 * y[None, :, None]
    folds = grouped_folds(codes, 5, 5, y, "regression", seed=0)
    score, _ = cv_jackknife(X, y, folds, DEFAULT_ALPHAS, codes, "regression", device="cpu")
    oof, _ = cv_predictions(X, y[:, None], folds, DEFAULT_ALPHAS, device="cpu")
    want = np.mean([st.spearmanr(oof[0][0, te, 0], y[te])[0] for _, te, _ in folds])
    assert score[0] == pytest.approx(want, abs=1e-12)  # equal fold sizes: a plain mean


def test_one_feature_deletions_equal_refits_sign_flips_included():
    """A weak one-feature probe ranks a test fold by sign(training covariance) * x; deleting a
    training item can flip that sign. Checked against the rule recomputed without the item."""
    rng = np.random.default_rng(5)
    n = 40
    y = rng.standard_normal(n)
    x = rng.standard_normal(n)  # no signal: the training covariances sit near 0
    codes = np.arange(n)
    fold = codes % 4
    score, dropped = one_feature_jackknife(y, x, fold, codes, "regression")
    flips = 0
    for g in range(n):
        num = den = 0.0
        for f in range(4):
            tr = (fold != f) & (codes != g)
            te = (fold == f) & (codes != g)
            sign = np.sign(np.cov(x[tr], y[tr])[0, 1])
            flips += sign != np.sign(np.cov(x[fold != f], y[fold != f])[0, 1])
            num += te.sum() * sign * st.spearmanr(x[te], y[te])[0]
            den += te.sum()
        assert dropped[g] == pytest.approx(num / den, abs=1e-12)
    assert flips > 0  # some deletions flip a fold's sign: the case a fixed prediction misses


def test_half_scores_store_each_half_s_deletions_under_the_halving_s_items():
    """Items of 1-3 rows in shuffled order: each half's deletion scores sit at its items' columns
    of the halving (equal to cv_jackknife / one_feature_jackknife on that half's rows), and an
    item of the other half leaves the score as it is."""
    rng = np.random.default_rng(9)
    sizes = rng.integers(1, 4, 60)
    ids = np.repeat([f"q{k:02d}" for k in rng.permutation(60)], sizes)
    order = rng.permutation(len(ids))
    ids = ids[order]
    latent = {i: rng.standard_normal() for i in set(ids)}
    y = np.array([latent[i] for i in ids]) + 0.3 * rng.standard_normal(len(ids))
    feats = {"resid_post.0|p": rng.standard_normal((len(ids), 7))}
    feats["resid_post.0|p"][:, 0] += y
    feats["baseline:len|p"] = (y + rng.standard_normal(len(ids)))[:, None]
    halves = half_splits(ids, 3, seed=1)
    hs = half_scores(feats, y, ids, halves, cv=4, inner_cv=3, seed=2, device="cpu")
    for s in range(3):
        for h in (0, 1):
            mine = halves.iloc[:, s].to_numpy() == h
            rows = np.flatnonzero(halves.loc[ids, s].to_numpy() == h)
            members, codes = np.unique(halves.index.get_indexer(ids[rows]), return_inverse=True)
            np.testing.assert_array_equal(members, np.flatnonzero(mine))
            folds = grouped_folds(codes, 4, 3, y[rows], "regression", 2 + s)
            fold = np.empty(len(rows), dtype=int)
            for k, (_, test, _) in enumerate(folds):
                fold[test] = k
            X = feats["resid_post.0|p"][rows][None]
            score, dropped = cv_jackknife(X, y[rows], folds, DEFAULT_ALPHAS, codes, "regression")
            base, base_dropped = one_feature_jackknife(
                y[rows], feats["baseline:len|p"][rows, 0], fold, codes, "regression"
            )
            for k, (full, part) in enumerate([(score[0], dropped[0]), (base, base_dropped)]):
                np.testing.assert_allclose(hs.deleted[s, h, k, mine], part, rtol=1e-6)
                np.testing.assert_allclose(hs.deleted[s, h, k, ~mine], full, rtol=1e-6)
                assert hs.scores[s, h, k] == pytest.approx(full)
