"""The alpha range of the test, chosen before any held-out item is steered: the model's linear
regime, where pushing along a random direction of the same norm barely changes how long it
thinks.

Pre-registered rule (fixed before any result was seen): on the direction-fitting items, steer
``n`` random isotropic directions (not the ones of the held-out null) at each magnitude ``m`` of
the alpha grid, ``-m`` and ``+m``, one sample per item; the change of a direction at an alpha is
``d = mean over items of cost(alpha) - cost(0)`` (cost = log(1 + reasoning tokens); the same
sampling seeds at every alpha, so sampling noise largely cancels), and ``rms_change(alpha)`` the
root mean square of ``d`` over the random directions. ``alpha_max`` is the largest magnitude of
the grid at which ``rms_change`` stays below ``tolerance`` at both signs and at every smaller
magnitude. Magnitudes are tried from the smallest up and the walk stops at the first that fails
(the rule never looks past it). If even the smallest fails, ``alpha_max`` is the smallest magnitude
and ``within`` is False on every row (the report says there is no linear regime on the grid).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.errors import InputError
from experiments.steering.analysis import item_means

LINEAR_COLUMNS = [
    "model",
    "alpha",
    "n_items",
    "n_directions",
    "rms_change",
    "max_abs_change",
    "tolerance",
    "within",
    "alpha_max",
]


def changes(steering: pd.DataFrame) -> pd.DataFrame:
    """Per (model, direction, alpha != 0): ``d`` = mean item cost at alpha minus at 0, over the
    items the direction has at both."""
    means = item_means(steering)
    wide = means.pivot_table(
        index=["model", "direction", "item_id"], columns="alpha", values="cost"
    )
    if 0.0 not in wide.columns:
        raise InputError("the calibration table has no alpha = 0 rows to measure changes from")
    rows = []
    for alpha in [a for a in wide.columns if a != 0]:
        both = wide[[0.0, alpha]].dropna()
        d = (both[alpha] - both[0.0]).groupby(level=["model", "direction"]).agg(["mean", "size"])
        rows += [
            dict(model=m, direction=r, alpha=float(alpha), d=v["mean"], n_items=int(v["size"]))
            for (m, r), v in d.iterrows()
        ]
    return pd.DataFrame(rows, columns=["model", "direction", "alpha", "d", "n_items"])


def linear_rows(steering: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """``LINEAR_COLUMNS`` (but ``alpha_max``) per (model, alpha) of a calibration table."""
    d = changes(steering)
    out = (
        d.groupby(["model", "alpha"])
        .agg(
            n_items=("n_items", "min"),
            n_directions=("d", "size"),
            rms_change=("d", lambda x: float(np.sqrt(np.mean(np.square(x))))),
            max_abs_change=("d", lambda x: float(np.max(np.abs(x)))),
        )
        .reset_index()
    )
    return out.assign(tolerance=tolerance, within=out["rms_change"] < tolerance)


def pick_alpha_max(rows: pd.DataFrame, magnitudes: Sequence[float]) -> float:
    """The largest magnitude whose ±alpha, and every smaller magnitude's, are within tolerance;
    the smallest magnitude if none is."""
    within = {float(a): bool(w) for a, w in zip(rows["alpha"], rows["within"])}
    best = None
    for m in sorted(magnitudes):
        if within.get(-m, False) and within.get(m, False):
            best = m
        else:
            break
    return min(magnitudes) if best is None else best


def linear_range(
    model,
    tokenizer,
    spec,
    items: pd.DataFrame,
    *,
    directions: dict[str, np.ndarray],
    site: str,
    positions: str,
    alphas: Sequence[float],
    scale: float,
    config,
    tolerance: float,
    out: str | Path,
    checker: Callable | None = None,
    progress: bool = True,
) -> tuple[float, pd.DataFrame]:
    """Apply the rule (module docstring) on ``items`` (the fit items): (alpha_max, its table)."""
    from experiments.steering.experiment import run_steering

    magnitudes = sorted({abs(float(a)) for a in alphas} - {0.0})
    if not magnitudes or not directions:
        raise InputError("the linear-range rule needs non-zero alphas and random directions")
    if not tolerance > 0:
        raise InputError(f"tolerance={tolerance}; pass a positive change in log-length units")
    tried: list[float] = []
    rows = pd.DataFrame()
    for m in magnitudes:
        tried += [-m, m]
        table = run_steering(
            model,
            tokenizer,
            spec,
            items,
            directions=directions,
            site=site,
            positions=positions,
            alphas=tried,
            scale=scale,
            config=config,
            out=out,
            checker=checker,
            progress=progress,
        )
        rows = linear_rows(table, tolerance)
        if not rows[rows["alpha"].abs() == m]["within"].all():
            break
    alpha_max = pick_alpha_max(rows, magnitudes)
    if not (rows["within"] | (rows["alpha"].abs() > alpha_max)).all():
        rows = rows.assign(within=False)
    return alpha_max, rows.assign(alpha_max=alpha_max).reindex(columns=LINEAR_COLUMNS)
