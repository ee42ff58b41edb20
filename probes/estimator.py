"""``LinearProbe``: one scikit-learn estimator for ridge (regression) and L2-logistic
(classification) probes.

Regression is ``make_pipeline(StandardScaler(), Ridge(alpha))`` solved in closed form in torch
(fp64, ``probes.ridge``); classification is ``make_pipeline(StandardScaler(),
LogisticRegression(C=1/alpha))`` (lbfgs), i.e. the penalty ``alpha/2 ||w||^2`` on the summed
log-loss. Fitted ``coef_``/``intercept_`` are expressed in the ORIGINAL feature space
(standardisation undone), so ``X @ coef_ + intercept_`` is the decision value.

``check_estimator`` passes for both tasks (tests/test_probes_ridge.py runs it); the estimator
type (regressor/classifier) follows ``task`` through ``__sklearn_tags__``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from experiments.errors import InputError
from probes.checks import check_task
from probes.ridge import RidgeBasis, as_tensor, resolve_device, ridge_coef


def _is_classifier(probe: LinearProbe) -> bool:
    return probe.task == "classification"


class LinearProbe(BaseEstimator):
    """Linear probe: ridge for ``task="regression"``, L2 logistic for ``task="classification"``.

    Parameters: ``alpha`` (> 0) ridge penalty / inverse of logistic ``C``; ``standardize``: scale
    features to unit variance on the training data first; ``device``: torch device for the ridge
    path (None = CUDA when available).
    Fitted: ``coef_`` [d] (or [P, d] for 2-D regression targets, [1, d] for logistic, as in
    scikit-learn), ``intercept_``, ``n_features_in_``, ``classes_`` (classification).
    """

    def __init__(
        self,
        task: str = "regression",
        alpha: float = 1.0,
        standardize: bool = True,
        device: str | None = None,
    ) -> None:
        self.task = task
        self.alpha = alpha
        self.standardize = standardize
        self.device = device

    def __sklearn_tags__(self):  # noqa: ANN204 - scikit-learn's Tags type
        tags = super().__sklearn_tags__()
        if self.task == "classification":
            from sklearn.utils import ClassifierTags

            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags()
        else:
            from sklearn.utils import RegressorTags

            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
            tags.target_tags.multi_output = True
        tags.target_tags.required = True
        return tags

    def fit(self, X, y) -> LinearProbe:  # noqa: ANN001 - array-likes
        check_task(self.task)
        if not self.alpha > 0:
            raise InputError(f"alpha={self.alpha!r}; the penalty must be > 0")
        if self.task == "classification":
            X, y = validate_data(self, X, y)
            check_classification_targets(y)
            pipe = make_pipeline(
                StandardScaler(with_std=self.standardize),
                LogisticRegression(C=1.0 / self.alpha, max_iter=5000, tol=1e-10),
            ).fit(X, y)
            scaler, logit = pipe[0], pipe[-1]
            self.classes_ = logit.classes_
            scale = scaler.scale_ if self.standardize else np.ones(X.shape[1])
            self.coef_ = logit.coef_ / scale
            self.intercept_ = logit.intercept_ - self.coef_ @ scaler.mean_
            return self
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True)
        dev = resolve_device(self.device)
        Y = as_tensor(y.reshape(len(y), -1), dev)
        basis = RidgeBasis(as_tensor(X, dev), standardize=self.standardize)
        W, b = ridge_coef(basis, Y, as_tensor([self.alpha], dev))
        coef, intercept = W[0].T.cpu().numpy(), b[0].cpu().numpy()
        self.coef_ = coef[0] if y.ndim == 1 else coef
        self.intercept_ = float(intercept[0]) if y.ndim == 1 else intercept
        return self

    def _decision(self, X) -> np.ndarray:  # noqa: ANN001
        """``X @ coef_.T + intercept_`` (regression: the prediction; classification: log-odds)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        out = X @ np.asarray(self.coef_).T + self.intercept_
        binary = self.task == "classification" and len(self.classes_) == 2
        return out.ravel() if binary or np.ndim(self.coef_) == 1 else out

    @available_if(_is_classifier)
    def decision_function(self, X) -> np.ndarray:  # noqa: ANN001
        """Log-odds of the positive class (classification only)."""
        return self._decision(X)

    def predict(self, X) -> np.ndarray:  # noqa: ANN001
        scores = self._decision(X)
        if self.task == "classification":
            return (
                self.classes_[(scores > 0).astype(int)]
                if len(self.classes_) == 2
                else self._multi(X)
            )
        return scores

    @available_if(_is_classifier)
    def predict_proba(self, X) -> np.ndarray:  # noqa: ANN001
        """Class probabilities (classification only)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        logits = X @ self.coef_.T + self.intercept_
        if len(self.classes_) == 2:
            p = 1 / (1 + np.exp(-logits[:, 0]))
            return np.column_stack([1 - p, p])
        logits = logits - logits.max(1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(1, keepdims=True)

    def _multi(self, X) -> np.ndarray:  # noqa: ANN001
        return self.classes_[self.predict_proba(X).argmax(1)]

    def score(self, X, y, sample_weight=None) -> float:  # noqa: ANN001
        """R^2 (regression) or accuracy (classification), as scikit-learn's mixins define."""
        if self.task == "classification":
            return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))
        return float(r2_score(y, self.predict(X), sample_weight=sample_weight))
