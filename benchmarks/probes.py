"""Benchmark: handan's probe sweep vs the same sweep written with scikit-learn.

Both run, per layer, 5-fold GroupKFold with alpha chosen from 10 values by an inner 5-fold
GroupKFold (the same folds for both): handan through ``probes.sweep`` (one eigendecomposition per
outer fold serving every alpha and the inner folds), scikit-learn as
``make_pipeline(StandardScaler(), RidgeCV(alphas, cv=inner_splits))`` in a per-layer loop. The
scores (Spearman rho of out-of-fold predictions) and chosen alphas must agree.

    python benchmarks/probes.py            # n=2,000 items, 28 layers, d=1,536 (minutes)
    python benchmarks/probes.py --small    # n=300, 4 layers, d=128 (seconds)

``--sklearn-layers K`` times scikit-learn on the first K layers only and scales its time by
28/K (its cost is the same for every layer); handan always runs all layers. Times are medians
over ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and this file (probes.py) would
# shadow the probes package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.linear_model import RidgeCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from probes import sweep  # noqa: E402
from probes.checks import grouped_folds  # noqa: E402


class SyntheticLayers(Mapping[str, np.ndarray]):
    """Layer activations generated on access (keeps memory at one layer): layer l carries y with
    weight that rises to the middle of the network."""

    def __init__(self, y: np.ndarray, n_layers: int, d: int, seed: int) -> None:
        self.y, self.n_layers, self.d, self.seed = y, n_layers, d, seed

    def __getitem__(self, key: str) -> np.ndarray:
        layer = int(key.split("|")[0].rsplit(".", 1)[1])
        rng = np.random.default_rng(self.seed + layer)
        X = rng.standard_normal((len(self.y), self.d)) @ np.diag(rng.uniform(0.2, 2.0, self.d))
        strength = np.sin(np.pi * layer / max(self.n_layers - 1, 1))
        X[:, :8] += strength * self.y[:, None] * rng.uniform(0.5, 1.0, 8)
        return X

    def __iter__(self) -> Iterator[str]:
        return (f"resid_post.{layer}|prompt_end" for layer in range(self.n_layers))

    def __len__(self) -> int:
        return self.n_layers


def sklearn_sweep(
    features: Mapping[str, np.ndarray],
    y: np.ndarray,
    groups: np.ndarray,
    keys: list[str],
    alphas: np.ndarray,
    cv: int,
    seed: int,
) -> dict[str, tuple[float, float]]:
    """Per layer: (fold-wise Spearman rho of out-of-fold predictions, median chosen alpha)."""
    folds = grouped_folds(groups, cv, cv, y, "regression", seed)
    out = {}
    for key in keys:
        X = features[key]
        oof, chosen = np.empty(len(y)), []
        for train, test, inner in folds:
            splits = [(np.setdiff1d(np.arange(len(train)), block), block) for block in inner]
            model = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas, cv=splits)).fit(
                X[train], y[train]
            )
            oof[test] = model.predict(X[test])
            chosen.append(model[-1].alpha_)
        # the sweep's score: Spearman inside each outer test fold, weighted by the fold's rows
        rho = sum(len(test) * spearmanr(oof[test], y[test])[0] for _, test, _ in folds)
        out[key] = (float(rho / len(y)), float(np.median(chosen)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="quick run (n=300, 4 layers, d=128)")
    parser.add_argument(
        "--sklearn-layers", type=int, default=None, help="time scikit-learn on K layers"
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    n, n_layers, d = (300, 4, 128) if args.small else (2000, 28, 1536)
    cv, alphas, seed = 5, np.logspace(-2, 4, 10), 0
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(n)
    groups = np.arange(n)
    features = SyntheticLayers(y, n_layers, d, seed)
    keys = list(features)
    sk_keys = keys[: args.sklearn_layers or n_layers]

    handan_times, f32_times, sk_times = [], [], []
    base = dict(
        cv=cv,
        alphas=alphas,
        n_permutations=0,
        n_boot=0,
        n_random_dims=0,
        seed=seed,
        device=args.device,
    )
    for _ in range(args.repeats):
        start = time.perf_counter()
        table = sweep(features, y, groups, **base)
        handan_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        table32 = sweep(features, y, groups, dtype="float32", **base)
        f32_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        reference = sklearn_sweep(features, y, groups, sk_keys, alphas, cv, seed)
        sk_times.append((time.perf_counter() - start) * n_layers / len(sk_keys))

    by_key = table.assign(key=table["site"] + "|" + table["position"]).set_index("key")
    for key, (rho, alpha) in reference.items():
        assert abs(by_key.loc[key, "score"] - rho) < 1e-6, (key, by_key.loc[key, "score"], rho)
        assert by_key.loc[key, "alpha"] == alpha, (key, by_key.loc[key, "alpha"], alpha)
    t_h, t_s = float(np.median(handan_times)), float(np.median(sk_times))
    t_32 = float(np.median(f32_times))
    d32 = float(np.abs(table32["score"].to_numpy() - table["score"].to_numpy()).max())
    same_alpha = float((table32["alpha"].to_numpy() == table["alpha"].to_numpy()).mean())
    print(
        f"n={n} items, {n_layers} layers, d={d}, {cv} folds x {cv} inner folds, {len(alphas)} alphas"
    )
    print(f"scores and alphas agree on {len(reference)} layers (|d rho| < 1e-6)")
    print(f"handan sweep ({args.device}): {t_h:.1f} s")
    scaled = (
        ""
        if len(sk_keys) == n_layers
        else f" (timed on {len(sk_keys)} layers, scaled to {n_layers})"
    )
    print(f"scikit-learn RidgeCV loop: {t_s:.1f} s{scaled}")
    print(f"speed-up: {t_s / t_h:.1f}x")
    print(
        f"handan sweep float32 ({args.device}): {t_32:.1f} s, speed-up {t_s / t_32:.1f}x; "
        f"max |score - float64 score| = {d32:.1e}, same alpha on {same_alpha:.0%} of layers"
    )

    start = time.perf_counter()
    sweep(
        {k: features[k] for k in keys[:1]},
        y,
        groups,
        cv=cv,
        alphas=alphas,
        seed=seed,
        device=args.device,
    )
    print(
        f"handan, one layer with 100 permutation re-fits, 1,000 bootstraps and the "
        f"random-feature baseline: {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
