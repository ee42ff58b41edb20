"""Benchmark: the closed-form jackknife of ``probes.jackknife.cv_jackknife`` against the nested
ridge fit alone (``probes.layer_sweep.cv_predictions``: what every half-score costs anyway) and
against refitting the nested CV once per deleted item (what the closed form replaces; timed on
``--refits`` items and scaled to all of them).

    python benchmarks/jackknife.py            # one half of 300 items, 16 keys d = 1,536
    python benchmarks/jackknife.py --small    # one half of 150 items, 12 keys d = 40

Times are medians over ``--repeats`` runs, one thread; the ratios are against the fit alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from probes.checks import grouped_folds  # noqa: E402
from probes.jackknife import cv_jackknife  # noqa: E402
from probes.layer_sweep import DEFAULT_ALPHAS, cv_predictions  # noqa: E402


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--refits", type=int, default=5, help="deletions refitted explicitly")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n, keys, d = (75, 12, 40) if args.small else (150, 16, 1536)
    rng = np.random.default_rng(0)
    y = rng.standard_normal(n)
    X = rng.standard_normal((keys, n, d))
    X[:, :, :8] += 0.3 * y[None, :, None]
    codes = np.arange(n)
    folds = grouped_folds(codes, 5, 5, y, "regression", seed=0)

    def fit():
        cv_predictions(X, y[:, None], folds, DEFAULT_ALPHAS, device="cpu")

    def jackknife():
        cv_jackknife(X, y, folds, DEFAULT_ALPHAS, codes, "regression", device="cpu")

    def refits():
        for g in range(args.refits):
            keep = codes != g
            sub = grouped_folds(codes[keep], 5, 5, y[keep], "regression", seed=0)
            cv_predictions(X[:, keep], y[keep, None], sub, DEFAULT_ALPHAS, device="cpu")

    t_fit = median_time(fit, args.repeats)
    t_jack = median_time(jackknife, args.repeats)
    t_refit = median_time(refits, args.repeats) * n / args.refits
    print(f"{n} items in the half, {keys} keys d = {d}, 5 x 5 nested folds, 10 alphas")
    print(f"  nested fit alone       {t_fit:8.3f} s   1.00x")
    print(f"  closed-form jackknife  {t_jack:8.3f} s   {t_jack / t_fit:.2f}x (fit included)")
    print(
        f"  a refit per deletion   {t_refit:8.3f} s   {t_refit / t_fit:.1f}x (scaled from "
        f"{args.refits} of {n})"
    )


if __name__ == "__main__":
    main()
