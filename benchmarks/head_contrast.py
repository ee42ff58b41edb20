"""Bias, size and coverage of the teacher - student best-head contrast (``probes.heads.
compare_heads``, primary row) in the organism's regime: model a 4 layers x 4 heads of d_head 32,
model b either the same (truth 0: size) or 3 layers x 4 heads of d_head 24 (the student's shape),
equal signal on one unit of every head, 10 halvings. The truth of a replication is the mean
half-sample score of a's heads minus b's (every head carries the same signal, so the pick has
nothing to gain). ``python benchmarks/head_contrast.py --reps 40`` (one thread)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
# run as a script, this folder comes first on sys.path and benchmarks/probes.py would shadow probes
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from probes.crossfit import half_scores, half_splits  # noqa: E402
from probes.heads import compare_heads  # noqa: E402


def heads(layers: int, n_heads: int, d: int, y: np.ndarray, signal: float, rng) -> dict:
    out = {}
    for layer in range(layers):
        for h in range(n_heads):
            X = rng.standard_normal((len(y), d)).astype(np.float32)
            X[:, 0] += signal * y
            out[f"attn_z.{layer}.{h}|prompt_end"] = X
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--signal", type=float, default=0.5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    shapes = {"same shape (truth 0)": (4, 4, 32), "student shape": (3, 4, 24)}
    recs = {k: [] for k in shapes}
    start = time.process_time()
    for r in range(args.reps):
        rng = np.random.default_rng(r)
        y = rng.standard_normal(args.items)
        ids = np.array([f"i{k:04d}" for k in range(args.items)])
        halves = half_splits(ids, 10, seed=r)
        kw = dict(device="cpu", dtype="float32", seed=r)
        ha = half_scores(heads(4, 4, 32, y, args.signal, rng), y, ids, halves, n_layers=4, **kw)
        for name, (layers, n_heads, d) in shapes.items():
            fb = heads(layers, n_heads, d, y, args.signal, rng)
            hb = half_scores(fb, y, ids, halves, n_layers=layers, **kw)
            row = compare_heads(ha, hb).query("comparison == 'best_head'").iloc[0]
            truth = ha.scores.mean() - hb.scores.mean()
            recs[name].append(
                (
                    row["diff"] - truth,
                    row["diff_lo"] <= truth <= row["diff_hi"],
                    row["p"] < 0.05,
                    truth,
                )
            )
    for name, rec in recs.items():
        bias, cover, reject, truth = (np.array(x, dtype=float) for x in zip(*rec))
        n = len(rec)
        c, j = cover.mean(), reject.mean()
        print(
            f"{name}: truth {truth.mean():+.3f}, bias {bias.mean():+.4f} (MC SE "
            f"{bias.std(ddof=1) / np.sqrt(n):.4f}), coverage {c:.3f} "
            f"({np.sqrt(c * (1 - c) / n):.3f}), rejection at .05 {j:.3f} "
            f"({np.sqrt(j * (1 - j) / n):.3f}), {n} reps"
        )
    print(f"({time.process_time() - start:.0f} s CPU)")


if __name__ == "__main__":
    main()
