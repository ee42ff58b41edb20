"""Steering directions: unit vectors in the ORIGINAL activation space, saved with metadata.

- ``diff_means``: mean activation of the items in the top ``quantile`` of y minus that of the bottom
  ``quantile`` (so it points towards larger y); tied quantiles split at the tied value.
- ``probe``: the weight vector of ``LinearProbe`` (ridge, or logistic for 0/1 targets) with the
  standardisation undone (``coef_`` is already in the original space), sign kept (towards larger y).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from experiments.errors import InputError, MissingInput
from probes.estimator import LinearProbe

METADATA_KEY = "handan"


def _extremes(y: np.ndarray, quantile: float) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the bottom and top ``quantile`` of y. Where ties make the two quantiles equal
    (a length target with most traces at the budget), the split is at that value: below it vs
    at or above it, or at or below it vs above it, whichever side is not empty."""
    lo, hi = np.quantile(y, [quantile, 1 - quantile])
    low, high = y <= lo, y >= hi
    if lo == hi:
        low, high = (y < lo, y >= lo) if (y < lo).any() else (y <= lo, y > lo)
    if not (low.any() and high.any()):
        raise InputError(
            f"y takes one value ({lo:g}) on all {len(y)} items; a difference of means needs a "
            "target that varies"
        )
    return low, high


def fit_direction(
    X: np.ndarray,
    y: np.ndarray,
    *,
    method: str = "diff_means",
    quantile: float = 0.25,
    alpha: float = 1.0,
) -> np.ndarray:
    """Unit-norm direction [d] from activations ``X`` [n, d] and target ``y`` [n]."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or len(X) != len(y):
        raise InputError(f"X must be [n, d] with n = len(y) = {len(y)}, got {X.shape}")
    if method == "diff_means":
        if not 0 < quantile <= 0.5:
            raise InputError(f"quantile={quantile}; use a fraction in (0, 0.5]")
        low, high = _extremes(y, quantile)
        vector = X[high].mean(0) - X[low].mean(0)
    elif method == "probe":
        binary = np.isin(y, (0.0, 1.0)).all()
        probe = LinearProbe(task="classification" if binary else "regression", alpha=alpha).fit(
            X, y
        )
        vector = np.ravel(probe.coef_)
    else:
        raise InputError(f"method={method!r} is unknown; use 'diff_means' or 'probe'")
    norm = np.linalg.norm(vector)
    if norm == 0:
        raise InputError(
            "the direction is the zero vector; the target carries no linear signal here"
        )
    return vector / norm


def save_direction(path: str | Path, vector: np.ndarray, metadata: dict[str, Any]) -> Path:
    """Write ``vector`` [d] to a safetensors file with JSON ``metadata`` (model, site, position,
    target, method, n, score, ...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    vector = np.ascontiguousarray(np.asarray(vector))
    if vector.ndim != 1:
        raise InputError(f"a direction is 1-D [d], got shape {vector.shape}")
    save_file(
        {"direction": vector}, str(path), metadata={METADATA_KEY: json.dumps(metadata, default=str)}
    )
    return path


def load_direction(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a direction written by ``save_direction``: (vector [d], metadata)."""
    path = Path(path)
    if not path.exists():
        raise MissingInput(f"{path} does not exist; write it with probes.directions.save_direction")
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
    return load_file(str(path))["direction"], json.loads(meta.get(METADATA_KEY, "{}"))
