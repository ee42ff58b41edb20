"""The torch ridge path and LinearProbe against scikit-learn (fp64, 1e-6)."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from probes import LinearProbe
from probes.checks import grouped_folds
from probes.layer_sweep import cv_predictions

ALPHAS = np.logspace(-2, 4, 10)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add contention on the shared box
    yield
    torch.set_num_threads(threads)


def _data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 5, size=d) + rng.normal(size=d) * 3
    X[:, 2] = 4.0  # a constant feature: StandardScaler leaves it at scale 1
    y = X[:, 0] - 0.5 * X[:, 1] + rng.normal(size=n)
    return X, y


@pytest.mark.parametrize("n,d", [(80, 30), (40, 120)])  # covariance route and Gram route
@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("alpha", [0.01, 3.0, 1e3])
def test_ridge_matches_sklearn_pipeline(n, d, standardize, alpha):
    X, y = _data(n, d)
    probe = LinearProbe(alpha=alpha, standardize=standardize, device="cpu").fit(X, y)
    steps = [StandardScaler()] if standardize else []
    ref = make_pipeline(*steps, Ridge(alpha=alpha)).fit(X, y)
    X_new, _ = _data(25, d, seed=1)
    np.testing.assert_allclose(probe.predict(X_new), ref.predict(X_new), rtol=0, atol=1e-6)
    scale = ref[0].scale_ if standardize else 1.0
    np.testing.assert_allclose(probe.coef_, ref[-1].coef_ / scale, rtol=0, atol=1e-6)


def test_ridge_multioutput_matches_sklearn():
    X, y = _data(60, 10)
    Y = np.column_stack([y, -2 * y + 1])
    probe = LinearProbe(alpha=2.0, device="cpu").fit(X, Y)
    ref = make_pipeline(StandardScaler(), Ridge(alpha=2.0)).fit(X, Y)
    np.testing.assert_allclose(probe.predict(X), ref.predict(X), atol=1e-6)


@pytest.mark.parametrize("n_items,d", [(60, 25), (50, 150)])
def test_nested_cv_matches_ridgecv_per_fold(n_items, d):
    X, y = _data(2 * n_items, d, seed=3)
    groups = np.repeat(np.arange(n_items), 2)
    folds = grouped_folds(groups, 5, 4, y, "regression", seed=0)
    oof, chosen = cv_predictions(X, y[:, None], folds, ALPHAS, device="cpu")
    for k, (train, test, inner) in enumerate(folds):
        splits = [(np.setdiff1d(np.arange(len(train)), block), block) for block in inner]
        ref = make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS, cv=splits)).fit(
            X[train], y[train]
        )
        assert ref[-1].alpha_ == ALPHAS[chosen[0][k, 0]]
        np.testing.assert_allclose(oof[0][test, 0], ref.predict(X[test]), rtol=0, atol=1e-6)


def test_nested_cv_vectorised_columns_equal_separate_runs():
    """Permutation columns share the per-fold decomposition; each must equal its own run."""
    X, y = _data(100, 20, seed=4)
    groups = np.arange(100)
    Y = np.column_stack([y, np.random.default_rng(0).permutation(y)])
    folds = grouped_folds(groups, 4, 4, y, "regression", seed=1)
    joint, _ = cv_predictions(X, Y, folds, ALPHAS, device="cpu")
    for p in range(2):
        alone, _ = cv_predictions(X, Y[:, [p]], folds, ALPHAS, device="cpu")
        np.testing.assert_allclose(joint[0][:, p], alone[0][:, 0], atol=1e-10)


def test_pca_rank_equals_ridge_on_top_components():
    from sklearn.decomposition import PCA

    X, y = _data(90, 12, seed=5)
    X[:, 2] += np.random.default_rng(2).normal(
        size=90
    )  # no constant column (PCA scaling ambiguity)
    folds = grouped_folds(np.arange(90), 3, 3, y, "regression", seed=0)
    oof, chosen = cv_predictions(X, y[:, None], folds, ALPHAS, device="cpu", ranks=[4])
    for k, (train, test, _) in enumerate(folds):
        ref = make_pipeline(StandardScaler(), PCA(4), Ridge(alpha=ALPHAS[chosen[0][k, 0]]))
        ref.fit(X[train], y[train])
        np.testing.assert_allclose(oof[0][test, 0], ref.predict(X[test]), atol=1e-6)


@pytest.mark.parametrize("alpha", [0.1, 10.0])
def test_logistic_matches_sklearn(alpha):
    X, y = _data(120, 8, seed=6)
    labels = (y > np.median(y)).astype(int)
    probe = LinearProbe(task="classification", alpha=alpha).fit(X, labels)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=1 / alpha, tol=1e-10, max_iter=5000))
    ref.fit(X, labels)
    np.testing.assert_allclose(probe.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(probe.decision_function(X), ref.decision_function(X), atol=1e-6)
    assert (probe.predict(X) == ref.predict(X)).all()


@pytest.mark.slow
@pytest.mark.parametrize("task", ["regression", "classification"])
def test_check_estimator(task):
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(LinearProbe(task=task, device="cpu"), on_fail=None)
    failed = [
        (r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"
    ]
    assert failed == []


def test_bad_alpha_and_task():
    X, y = _data(20, 3)
    with pytest.raises(ValueError, match="alpha"):
        LinearProbe(alpha=0).fit(X, y)
    with pytest.raises(ValueError, match="task"):
        LinearProbe(task="ranking").fit(X, y)
