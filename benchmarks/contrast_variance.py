"""Variance estimators for the cross-fitted best-layer contrast, compared on the same
replications (no refitting): the one ``probes.crossfit.crossfit_ci`` uses and the variants it
was chosen over, with the decomposition of the estimate's variance they rest on.

    python benchmarks/probe_stats.py --only contrast --dump DIR        # 200 replications
    python benchmarks/probe_stats.py --only real_contrast --scale 2.5 --dump DIR   # 100
    python benchmarks/contrast_variance.py DIR

The estimate is the mean of 2S half-estimates (S halvings x 2 halves). Given the data its
variance is the halvings' Monte-Carlo variance, var(per-split means) / S; over data sets add
var(E[estimate | data]), the item-sampling part. Every estimator below starts from the
delete-one-item jackknife of the estimate (``probes.jackknife``: each deletion refitted, picks
held):

- ``current`` (``crossfit_ci``): the jackknife of the item effects the halvings share (each
  item's spread over the halvings / S removed) + var(per-split means) / S, with its t quantile
  (the others use the normal quantile);
- ``jackknife``: the plain jackknife of the estimate, nothing added or removed. Each halving's
  noise is a pairwise interaction of training and test items, which a delete-one jackknife
  counts about twice;
- ``jackknife + halvings``: that plus var(per-split means) / S (counts the halvings three times);
- ``halvings``: var(per-split means) / S alone (no item sampling).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.stats as st

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from probes.crossfit import cross_picked, crossfit_ci, held  # noqa: E402

Z = st.norm.ppf(0.975)
NAMES = ("current", "jackknife", "jackknife + halvings", "halvings")


def _normal(est: np.ndarray, var: float) -> tuple[float, float, float, float]:
    mean, se = float(est.mean()), float(np.sqrt(var))
    return mean, mean - Z * se, mean + Z * se, float(2 * st.norm.sf(abs(mean) / se))


def estimators(est: np.ndarray, dropped: np.ndarray) -> dict:
    """est [S, 2], dropped [S, 2, N] -> {name: (mean, lo, hi, p)} and the parts."""
    S, N = est.shape[0], dropped.shape[-1]
    split_var = est.mean(1).var(ddof=1) / S
    effect = dropped.mean(1) - dropped.mean(1).mean(1, keepdims=True)  # [S, N]
    plain = (N - 1) / N * (effect.mean(0) ** 2).sum()
    within = (N - 1) / N * (effect.var(0, ddof=1) / S).sum()
    out = {
        "current": crossfit_ci(est, dropped),
        "jackknife": _normal(est, plain),
        "jackknife + halvings": _normal(est, plain + split_var),
        "halvings": _normal(est, split_var),
    }
    out["parts"] = (split_var, within, plain - within)
    return out


def _cross(scores: np.ndarray, deleted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    est, pick = cross_picked(scores)
    return est, held(deleted, pick)


def main(folder: Path) -> None:
    cells: dict[str, list] = {}
    for f in sorted(folder.glob("rep*.npz")):
        z = np.load(f)
        site = ~z["a_is_base"]
        ea, da = _cross(z["a_scores"][:, :, site], z["a_deleted"][:, :, site])
        cells.setdefault("best site of a", []).append((z["a_truth"], ea, estimators(ea, da)))
        j = 0
        while f"b{j}_scores" in z:
            eb, db = _cross(z[f"b{j}_scores"], z[f"b{j}_deleted"])
            res = estimators(ea - eb, da - db)
            cells.setdefault(f"a - b{j}", []).append((z[f"b{j}_truth"], ea - eb, res))
            j += 1
    if not cells:
        raise SystemExit(f"no rep*.npz in {folder}: run probe_stats.py with --dump {folder}")
    for cell, rows in cells.items():
        truth = float(np.mean([r[0] for r in rows]))
        est = np.array([r[1].mean() for r in rows])
        split, within, shared = np.mean([r[2]["parts"] for r in rows], axis=0)
        print(
            f"{cell}: {len(rows)} replications; truth {truth:+.4f}; estimate SD {est.std(ddof=1):.4f} "
            f"(variance {est.var(ddof=1):.6f}), bias {est.mean() - truth:+.4f} "
            f"(MC SE {est.std(ddof=1) / np.sqrt(len(est)):.4f})"
        )
        print(
            f"  mean parts: halvings {split:.6f}, jackknife within a halving {within:.6f}, "
            f"shared by the halvings {shared:.6f}"
        )
        for name in NAMES:
            lo, hi, p = (np.array([r[2][name][k] for r in rows]) for k in (1, 2, 3))
            covered = ((lo <= truth) & (truth <= hi)).mean()
            rms = np.sqrt((((hi - lo) / (2 * Z)) ** 2).mean())
            print(
                f"  {name:22s} coverage {covered:.3f}, root-mean-square half-width / 1.96 {rms:.4f}, "
                f"share p < .05 {np.mean(p < 0.05):.3f}"
            )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(
            "usage: python benchmarks/contrast_variance.py DIR (a probe_stats --dump DIR)"
        )
    main(Path(sys.argv[1]))
