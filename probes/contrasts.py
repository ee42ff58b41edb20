"""Contrasts between two models' probes (teacher vs student, student vs baseline) and probe
transfer across models of the same width.

``compare`` takes each model's ``probes.crossfit.half_scores`` on the same halving of the same
items (the activations enter there: every half is refitted by its own nested CV) and reports,
per position, the difference a - b of:

- ``best_layer`` (the primary probe endpoint): each model's layer picked on one half and scored
  on the other (``probes.crossfit``), both ways, averaged over the halvings — the difference of
  what each model's own best layer decodes at half the items, with no advantage from having more
  layers or wider residuals to pick from (the pick never sees the scoring half's data or fits);
- ``depth``: pre-registered relative depths (``PREREGISTERED_DEPTHS``, fixed before any data:
  a quarter, half and three quarters of the way up), each model's layer nearest to it (the
  shallower on a tie) — no selection at all, so nothing to adjust; e.g. the middle of a 64-layer
  teacher vs the middle of a 28-layer student. A depth that lands on the same pair of layers as
  an earlier one (few layers) is not repeated.

CI and p: ``probes.crossfit.crossfit_ci`` on the 2S paired half-differences, with the
delete-one-item jackknife of both models on the same items (paired; every deletion refitted,
each half's pick held); bias, size and coverage measured by simulation are in ``compare``'s
docstring.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from experiments.errors import InputError
from probes.crossfit import (
    BASELINE_PREFIX,
    HalfScores,
    cross_picked,
    crossfit_ci,
    finite_mean,
    held,
    modal_key,
)
from probes.estimator import LinearProbe
from probes.layer_sweep import split_key
from probes.metrics import score

#: relative depths compared without selection, chosen before seeing any data
PREREGISTERED_DEPTHS = (0.25, 0.5, 0.75)


def compare(
    half_a: HalfScores,
    half_b: HalfScores,
    *,
    depths: Sequence[float] = PREREGISTERED_DEPTHS,
) -> pd.DataFrame:
    """Best-layer and pre-registered-depth score differences (a - b), cross-fitted, with CIs and
    p from the paired jackknife + halving variance (``probes.crossfit.crossfit_ci``).

    ``half_a`` / ``half_b``: ``probes.crossfit.half_scores`` of the two models on the same
    halving (``half_splits`` of the items both were probed on) and seed; ``baseline:*`` keys are
    ignored. Returns columns position, comparison (best_layer | depth), depth, site_a, site_b
    (the layers used: the modal pick for best_layer), score_a, score_b (mean half-sample
    scores), diff, diff_lo, diff_hi, p, endpoint (primary for best_layer, secondary for depth),
    n_items (fewest items in a half), n_splits.

    Measured by ``benchmarks/probe_stats.py`` (equal signal at every layer of both models, 10
    halvings). 150 items, signal 0.5 on one feature, 600 replications: 12 layers d = 40 vs 2
    layers d = 40 (truth 0) — bias -0.000 (MC SE 0.004), size 0.040 (0.008) at alpha = .05,
    coverage 0.960 (0.008), the estimate's SD 0.088 vs the CI's half-width / 1.96 0.093 — where
    the old cross-fit over one sweep's predictions read +0.048 (0.006) and the raw difference of
    the maxima +0.101 (0.004); 12 layers d = 40 vs 2 layers d = 20: the truth is -0.051 (at half
    the items the wider probe fits worse: a real difference of the estimand, not of the pick),
    bias +0.003 (0.003), coverage 0.975 (0.006). 300 items, 24 layers d = 256 vs 8 layers
    d = 128 (signal 0.3 on 8 features; 24 replications, before the t quantile, which only
    widens): truth -0.079, bias +0.004 (0.007), coverage 0.958 (0.041). The real runs' regime
    (``--only real_contrast --scale 2.5``: 300 items, teacher and student both 28 layers
    d = 1536, d > n, signal 0.3 on 8 features at every layer; 100 replications): truth 0 — bias
    -0.0044 (0.0036), size 0.040 (0.020), coverage 0.960, SD 0.0385 vs half-width / 1.96 0.048
    (conservative by 1.24x; the earlier fixed-fit bootstrap CI: size 0 of 100, 0.0575);
    student signal 0.2, truth +0.08 — bias +0.0015 (0.0035), coverage 0.990. 150 items, 12
    layers d = 600 both (160 replications): size 0.056 (0.018), coverage 0.944. Nadeau &
    Bengio's corrected resampled t covered 1.000 in every regime (far too wide).
    """
    if half_a.halves_id != half_b.halves_id:
        raise InputError(
            "the two models were split into different halves; make both half_scores from one "
            "half_splits of the items both models were probed on"
        )
    targets = {t for t in (half_a.target, half_b.target) if t}
    if len(targets) > 1:
        raise InputError(
            f"the sweeps probe different targets {sorted(targets)}; compare sweeps of one target"
        )
    if half_a.metric != half_b.metric:
        raise InputError(
            f"the sweeps use different metrics {sorted({half_a.metric, half_b.metric})}; "
            "compare the same target"
        )
    rows = []
    positions = [
        sorted({split_key(k)[1] for k in h.keys if not k.startswith(BASELINE_PREFIX)})
        for h in (half_a, half_b)
    ]
    for position in sorted(set(positions[0]) & set(positions[1])):
        halves = [
            h.select(
                [split_key(k)[1] == position and not k.startswith(BASELINE_PREFIX) for k in h.keys]
            )
            for h in (half_a, half_b)
        ]
        n_items = min(h.n_items for h in halves)
        picked = [cross_picked(h.scores) for h in halves]
        dropped = [held(h.deleted, pick) for h, (_, pick) in zip(halves, picked, strict=True)]
        sites = [
            split_key(modal_key(h.keys, pick)[0])[0]
            for h, (_, pick) in zip(halves, picked, strict=True)
        ]
        rows.append(
            _row(
                position,
                "best_layer",
                np.nan,
                sites,
                (picked[0][0], picked[1][0]),
                (dropped[0], dropped[1]),
                n_items,
            )
        )
        seen = set()
        for q in depths:
            at = [nearest_depth(h.depth, q) for h in halves]
            if any(i is None for i in at) or tuple(at) in seen:
                continue  # a depth that lands on layers already compared is the same test
            seen.add(tuple(at))
            rows.append(
                _row(
                    position,
                    "depth",
                    float(q),
                    [split_key(h.keys[i])[0] for h, i in zip(halves, at, strict=True)],
                    tuple(h.scores[:, :, i] for h, i in zip(halves, at, strict=True)),
                    tuple(h.deleted[:, :, i] for h, i in zip(halves, at, strict=True)),
                    n_items,
                )
            )
    return pd.DataFrame(rows)


def nearest_depth(depth: np.ndarray, q: float) -> int | None:
    """Index of the key whose relative depth is nearest ``q`` (the shallower on ties)."""
    if not np.isfinite(depth).any():
        return None
    gap = np.where(np.isfinite(depth), np.round(np.abs(depth - q), 9), np.inf)  # exact ties
    tied = np.flatnonzero(gap == gap.min())
    return int(tied[np.argmin(depth[tied])])


def _row(
    position: str,
    comparison: str,
    depth: float,
    sites: list[str],
    est: tuple[np.ndarray, np.ndarray],
    dropped: tuple[np.ndarray, np.ndarray],
    n_items: int,
) -> dict:
    diff, lo, hi, p = crossfit_ci(est[0] - est[1], dropped[0] - dropped[1])
    return {
        "position": position,
        "comparison": comparison,
        "depth": depth,
        "site_a": sites[0],
        "site_b": sites[1],
        "score_a": float(finite_mean(est[0])),
        "score_b": float(finite_mean(est[1])),
        "diff": diff,
        "diff_lo": lo,
        "diff_hi": hi,
        "p": p,
        "endpoint": "primary" if comparison == "best_layer" else "secondary",
        "n_items": n_items,
        "n_splits": est[0].shape[0],
    }


def transfer(probe: LinearProbe, X_b: np.ndarray, y: np.ndarray) -> float:
    """Score (Spearman rho or AUROC) of ``probe``, fitted on model A's activations, applied
    unchanged to model B's activations ``X_b`` [n, d] (same width) against ``y`` [n]."""
    width = probe.n_features_in_
    if np.asarray(X_b).shape[1] != width:
        raise InputError(
            f"the probe was fitted on width {width} but X_b has width "
            f"{np.asarray(X_b).shape[1]}; transfer needs models of the same d_model"
        )
    if probe.task == "classification":
        return score(np.asarray(y, dtype=float), probe.decision_function(X_b), "classification")
    return score(np.asarray(y, dtype=float), probe.predict(X_b), "regression")
