"""The closed-form delete-one-item jackknife equals refitting without the item."""

import numpy as np
import pytest
import scipy.stats as st
from sklearn.metrics import roc_auc_score

from probes.checks import grouped_folds
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
    x = 0.05 * y + rng.standard_normal(n)
    codes = np.arange(n)
    fold = codes % 4
    score, dropped = one_feature_jackknife(y, x, fold, codes, "regression")
    for g in range(n):
        num = den = 0.0
        for f in range(4):
            tr = (fold != f) & (codes != g)
            te = (fold == f) & (codes != g)
            sign = np.sign(np.cov(x[tr], y[tr])[0, 1])
            num += te.sum() * sign * st.spearmanr(x[te], y[te])[0]
            den += te.sum()
        assert dropped[g] == pytest.approx(num / den, abs=1e-12)
