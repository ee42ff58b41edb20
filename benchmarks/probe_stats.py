"""Simulations behind every probe statistic the report prints: bias at the null, size at
alpha = .05, coverage of 95% intervals, each with its Monte-Carlo standard error.

    python benchmarks/probe_stats.py            # all sections (11 min of CPU on one core)
    python benchmarks/probe_stats.py --quick    # a fifth of the replications (about 2 min)
    python benchmarks/probe_stats.py --only contrast   # or score, wide, max_t
    python benchmarks/probe_stats.py --only real  # the real runs' regime; not in the default
                                                  # run (about 45 min of CPU on one core)
    python benchmarks/probe_stats.py --only real_contrast --scale 2.5 --dump DIR
        # one real-regime section (real_score / real_max_t / real_contrast) at 2.5 x the
        # replications, each contrast replication's half-scores saved for
        # benchmarks/contrast_variance.py

Sections (planted data; every layer a fresh N(0, I_d) matrix plus ``signal * y`` on its first
feature(s), so the signal is equal at every layer and the true best-layer difference is known):

- ``score``: the pooled out-of-fold Spearman (the old score) vs the fold-wise score under H0 at
  80 and 392 items (mean and MC SE), and the size of ``p_perm``.
- ``contrast``: ``probes.compare``'s best-layer difference (and, for reference, the old
  cross-fit over one sweep's out-of-fold predictions and the raw difference of maxima), 150
  items, 12 layers d = 40 vs 2 layers d = 40 (truth 0: bias and size) and vs 2 layers d = 20
  (truth = the difference of a fixed layer's half-sample score: bias and coverage); then 300
  items, 24 layers d = 256 vs 8 layers d = 128 (the wide regime, fewer replications). The same
  replications score ``best_site`` (selection-adjusted score and site - baseline).
- ``max_t``: the store-level family-wise p over 6 positions x 4 layers: size under H0 and its
  floor with a planted signal (the old per-position p times 6 positions could not reach .05).
- ``real``: the regime of the real runs — teacher and student of one architecture,
  28 layers x d = 1536 each (R1-Distill-Qwen-1.5B / Qwen2.5-Math-1.5B), 300 items, one position
  (two for max-T); d > n, so the ridge runs through the n x n Gram matrix in float64 (the sweep
  overrides float32 there). Measured (seeded; one thread; the estimators' defaults: 5 x 5
  nested folds, 10 alphas, 10 halvings):

  - fold-wise score under H0 (one key, 99 permutations): mean +0.0054 (MC SE 0.0020) in the first
    1,600 replications, +0.0010 (0.0009) in 8,000 more (seeds 1,600-9,599; all 9,600: +0.0017,
    0.0008, 2.1 SE, carried by the first batch); pooled out-of-fold rho -0.049 (0.001); size of
    ``p_perm`` 0.061 (0.006), then 0.054 (0.003) at alpha = .05. Both are exact by construction (a
    test fold's labels do not reach its predictions and its rows are predicted one by one:
    tests/test_probes_sweep.py checks both at d > n), and the fresh replications agree; the first
    batch, which prompted the larger run, was a 2.7-SE excursion.
  - max-T over 28 layers x 2 positions under H0 (99 permutations, 80 replications):
    family-wise size 0.062 (MC SE 0.027) at alpha = .05 (0 of the first 40, 5 of the next 40).
  - ``compare`` best layer, signal 0.3 on 8 features at every layer of both (truth 0; 100
    replications, ``--only real_contrast --scale 2.5``): bias -0.0044 (MC SE 0.0036), size 0.040
    (0.020) at alpha .05, coverage 0.960; the estimate's SD over replications 0.0385 against the
    CI's half-width / 1.96 0.048 (recomputed from the dumped replications with the t quantile;
    the run itself, made before ``crossfit_ci`` had it, printed 0.050, 0.940, 0.0446).
  - student signal 0.2 (truth +0.08; the same replications and teacher): bias +0.0015 (0.0035),
    coverage 0.990.
  - ``best_site`` of the teacher (truth 0.156, a fixed layer's half-sample score): bias -0.0011
    (0.0028), coverage 0.960; site - baseline coverage 0.970.

  No bias beyond MC error (by construction the cross-picked estimate is unbiased at equal
  signal: the halves share no items) and a somewhat conservative contrast CI: ``--dump DIR``
  keeps each replication's half-scores and deletions, and ``benchmarks/contrast_variance.py DIR``
  splits the variance (most of it is the halvings' Monte-Carlo noise here) and scores the
  variants of the CI on the same replications (see ``probes.crossfit``). About 100 min of CPU
  for the section at --scale 2.5 (about 58 s per contrast replication of three models with
  the jackknife, 7 s per max-T replication, 0.14 s per score replication).

Seeded; float32 where the training parts have more rows than features (as the sweep does).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# one core: timings in this docstring are single-threaded CPU seconds
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# Run as a script, this file's folder comes first on sys.path and benchmarks/probes.py would
# shadow the probes package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from scipy.stats import t as t_dist  # noqa: E402

from probes import compare, sweep  # noqa: E402
from probes.crossfit import (  # noqa: E402
    best_site,
    cross_picked,
    half_scores,
    half_splits,
)
from probes.store_sweep import sweep_store  # noqa: E402

KW = dict(n_boot=0, n_random_dims=0, device="cpu")


def mean_se(x) -> str:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return f"{x.mean():+.4f} (MC SE {x.std(ddof=1) / np.sqrt(len(x)):.4f}, {len(x)} reps)"


def share_se(hits) -> str:
    h = np.asarray(hits, dtype=float)
    p = h.mean()
    return f"{p:.3f} (MC SE {np.sqrt(p * (1 - p) / len(h)):.3f}, {len(h)} reps)"


def layers(n_layers, d, y, signal, rng, n_signal=1, prefix="resid_post"):
    out = {}
    for layer in range(n_layers):
        X = rng.standard_normal((len(y), d)).astype(np.float32)
        X[:, :n_signal] += signal * y[:, None]
        out[f"{prefix}.{layer}|prompt_end"] = X
    return out


# ---- score: pooled vs fold-wise under H0 ----------------------------------------------------
def section_score(reps_small: int, reps_wide: int, configs=None, first: int = 0) -> None:
    """``configs``: (n, d, reps) tuples instead of the default 80 x 16 and 392 x 512;
    ``first``: skip the replications before it (to extend a run: same seeds)."""
    print("## score under H0 (one key, no signal; 5 x 5 nested folds, 10 alphas)")
    for n, d, reps in configs or ((80, 16, reps_small), (392, 512, reps_wide)):
        start = time.process_time()
        pooled, foldwise, p = [], [], []
        for r in range(first, reps):
            rng = np.random.default_rng(1000 + r)
            y = rng.standard_normal(n)
            X = rng.standard_normal((n, d)).astype(np.float32)
            table, preds = sweep(
                {"resid_post.0|prompt_end": X},
                y,
                np.arange(n),
                n_permutations=99,
                seed=r,
                dtype="float32",
                return_predictions=True,
                **KW,
            )
            pooled.append(spearmanr(preds["oof"], preds["y"])[0])
            foldwise.append(table["score"].iloc[0])
            p.append(table["p_perm"].iloc[0] <= 0.05)
        print(f"n={n} d={d}: pooled out-of-fold rho {mean_se(pooled)}")
        print(f"n={n} d={d}: fold-wise score      {mean_se(foldwise)}")
        print(f"n={n} d={d}: size of p_perm (99 permutations, alpha .05) {share_se(p)}")
        print(f"  ({time.process_time() - start:.0f} s CPU)", flush=True)


# ---- contrast and best site -------------------------------------------------------------------
def old_crossfit(preds: pd.DataFrame, side: np.ndarray) -> float:
    """The removed estimator: pick on one half of ONE sweep's out-of-fold predictions (pooled
    Spearman), score on the other, both ways."""
    scores = {
        key: [
            spearmanr(g["oof"][side[g["row"]] == h], g["y"][side[g["row"]] == h])[0] for h in (0, 1)
        ]
        for key, g in preds.groupby("key")
    }
    keys = list(scores)
    s = np.array([scores[k] for k in keys])  # [K, 2]
    return float((s[np.argmax(s[:, 1]), 0] + s[np.argmax(s[:, 0]), 1]) / 2)


def nadeau_bengio(est: np.ndarray) -> tuple[float, float]:
    """The corrected resampled t (Nadeau & Bengio 2003) on half-estimates [S, 2]: (lo, hi)."""
    v = est.ravel()
    se = np.sqrt((1 / v.size + 1) * v.var(ddof=1))
    q = t_dist.ppf(0.975, v.size - 1)
    return v.mean() - q * se, v.mean() + q * se


def section_contrast(
    reps, n, a, bs, signal, n_signal, n_splits, old_for=(), progress=0, label="", dump=None
) -> None:
    """Model a (layers, d) against each model b in ``bs`` on the same data and halves; the old
    cross-fit is re-run for the b's named in ``old_for``. A b is (layers, d) with a's signal, or
    (layers, d, signal); one equal to a in all three has a true difference of 0 (size printed).
    ``progress`` > 0: print the summary so far every ``progress`` replications as well."""
    La, da = a
    bs = [tuple(b) if len(b) == 3 else (*b, signal) for b in bs]
    print(
        f"## contrasts{label}: {La} layers d={da} vs "
        + ", ".join(
            f"{L} layers d={d}" + (f" (signal {sb})" if sb != signal else "") for L, d, sb in bs
        )
        + f"; {n} items, signal {signal} on {n_signal} feature(s) at every layer, "
        f"{n_splits} halvings",
        flush=True,
    )
    recs = {b: [] for b in bs}
    site_rec = []
    start = time.process_time()
    for r in range(reps):
        rng = np.random.default_rng(r)
        y = rng.standard_normal(n)
        ids = np.array([f"i{k:04d}" for k in range(n)])
        fa = layers(La, da, y, signal, rng, n_signal)
        base = {"baseline:feat|prompt_end": (0.3 * y + rng.standard_normal(n))[:, None]}
        halves = half_splits(ids, n_splits, seed=r)
        kw = dict(device="cpu", dtype="float32", seed=r)
        ha = half_scores(fa | base, y, ids, halves, n_layers=La, **kw)
        is_base = np.array([k.startswith("baseline:") for k in ha.keys])
        truth_a = ha.scores[:, :, ~is_base].mean()
        dumped = dict(a_scores=ha.scores, a_deleted=ha.deleted, a_is_base=is_base, a_truth=truth_a)
        a_est = cross_picked(ha.scores[:, :, ~is_base])[0]
        site = best_site(ha)
        site_rec.append(
            dict(
                site=site["score"] - truth_a,
                truth_a=truth_a,
                lo=site["score_lo"],
                hi=site["score_hi"],
                vs=site["diff_baseline"],
                vs_lo=site["diff_baseline_lo"],
                vs_hi=site["diff_baseline_hi"],
                vs_truth=truth_a - ha.scores[:, :, is_base].mean(),
            )
        )
        if old_for:
            sw = dict(n_permutations=0, seed=r, dtype="float32", return_predictions=True, **KW)
            ta, pa = sweep(fa, y, ids, **sw)
            side = rng.permutation(n) % 2
        for j, (Lb, db, sb) in enumerate(bs):
            fb = layers(Lb, db, y, sb, rng, n_signal)
            hb = half_scores(fb, y, ids, halves, n_layers=Lb, **kw)
            row = compare(ha, hb).query("comparison == 'best_layer'").iloc[0]
            est = a_est - cross_picked(hb.scores)[0]
            out = dict(
                diff=row["diff"],
                lo=row["diff_lo"],
                hi=row["diff_hi"],
                se=(row["diff_hi"] - row["diff_lo"]) / (2 * 1.959964),
                split_se=np.sqrt(est.mean(1).var(ddof=1) / len(est)),
                p=row["p"],
                nb=nadeau_bengio(est),
                truth=truth_a - hb.scores.mean(),
            )
            if (Lb, db) in old_for:
                tb, pb = sweep(fb, y, ids, **sw)
                out["old"] = old_crossfit(pa, side) - old_crossfit(pb, side)
                out["raw"] = ta["score"].max() - tb["score"].max()
            recs[(Lb, db, sb)].append(out)
            dumped |= {
                f"b{j}_scores": hb.scores,
                f"b{j}_deleted": hb.deleted,
                f"b{j}_truth": out["truth"],
            }
        if dump is not None:  # for benchmarks/contrast_variance.py: no refitting there
            dump.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(dump / f"rep{r:04d}.npz", **dumped)
        if progress and (r + 1) % progress == 0 and r + 1 < reps:
            print(f"- so far ({r + 1} of {reps} replications):", flush=True)
            _contrast_summary(recs, site_rec, (da, signal))
            print(f"  ({time.process_time() - start:.0f} s CPU)", flush=True)
    _contrast_summary(recs, site_rec, (da, signal))
    print(f"  ({time.process_time() - start:.0f} s CPU)", flush=True)


def _covers(lo, hi, value) -> str:
    return share_se((np.asarray(lo) <= value) & (value <= np.asarray(hi)))


def _contrast_summary(recs: dict, site_rec: list, a: tuple) -> None:
    for (Lb, db, sb), rec in recs.items():
        t = pd.DataFrame(rec)
        truth = t["truth"].mean()
        print(f"- a - b with b = {Lb} layers d={db}, signal {sb}:")
        print(
            f"  true difference (a fixed layer's half-sample score, a - b): {mean_se(t['truth'])}"
        )
        if "old" in t:
            print(f"  old cross-fit over one sweep's predictions (truth 0): {mean_se(t['old'])}")
            print(f"  raw max a - max b of full-data sweeps (truth 0):     {mean_se(t['raw'])}")
        print(f"  compare best_layer, estimate - truth (bias): {mean_se(t['diff'] - t['truth'])}")
        print(f"  coverage of its 95% CI: {_covers(t['lo'], t['hi'], truth)}")
        rms = np.sqrt((t["se"] ** 2).mean())
        print(
            f"  SD of the estimate over replications {t['diff'].std(ddof=1):.4f} vs the CI's "
            f"root-mean-square half-width / 1.96 {rms:.4f} (halvings' part {np.sqrt((t['split_se'] ** 2).mean()):.4f})"
        )
        if (db, sb) == a:  # same width and signal: the true difference is 0
            print(f"  size at alpha .05 (truth 0): {share_se(t['p'] < 0.05)}")
        nb_lo, nb_hi = zip(*t["nb"], strict=True)
        print(f"  (Nadeau-Bengio corrected t: coverage {_covers(nb_lo, nb_hi, truth)})")
    t = pd.DataFrame(site_rec)
    st_, vt = t["truth_a"].mean(), t["vs_truth"].mean()
    print(f"- best_site of a (truth: a fixed layer's half-sample score {st_:.4f}):")
    print(f"  estimate - truth (bias): {mean_se(t['site'])}")
    print(f"  CI coverage: {_covers(t['lo'], t['hi'], st_)}")
    print(f"  site - baseline, estimate - truth (bias): {mean_se(t['vs'] - t['vs_truth'])}")
    print(f"  site - baseline CI coverage: {_covers(t['vs_lo'], t['vs_hi'], vt)}", flush=True)


# ---- max-T over positions -----------------------------------------------------------------
class MemoryStore:
    """The part of ``hooks.store.ActivationStore`` that ``sweep_store`` reads, in memory."""

    def __init__(self, X: dict[tuple[str, str], np.ndarray], ids: list[str]) -> None:
        self._X = X
        self.sites = sorted({s for s, _ in X})
        self.positions = sorted({p for _, p in X})
        self.manifest = {"model": "m", "n_layers": len(self.sites)}
        self.index = pd.DataFrame(
            [
                dict(item_id=i, sample=0, site=s, position=p, token_index=5, shard="x")
                for s, p in X
                for i in ids
            ]
        )
        self._ids = ids

    def load(self, site, position):
        rows = self.index[(self.index.site == site) & (self.index.position == position)]
        return self._X[(site, position)], rows.reset_index(drop=True)


def section_max_t(
    reps: int,
    n: int = 120,
    n_positions: int = 6,
    n_layers: int = 4,
    d: int = 8,
    n_permutations: int = 39,
    planted_reps: int | None = None,
    first: int = 0,
) -> None:
    """Family-wise size of the smallest ``p_fwe`` under H0 over ``n_positions`` x ``n_layers``
    noise sites of width ``d``; then (``planted_reps``, default max(10, reps // 10)) the best
    site's p_fwe with a signal planted at one site. ``first``: skip the H0 replications before
    it (to extend a run: same seeds)."""
    print(
        f"## max-T over {n_positions} positions x {n_layers} layers, d={d}, {n} items, "
        f"{n_permutations} permutations",
        flush=True,
    )
    planted_reps = max(10, reps // 10) if planted_reps is None else planted_reps
    start = time.process_time()
    for signal, n_reps in ((0.0, reps), (1.0, planted_reps)):
        if not n_reps:
            continue
        hits, best = [], []
        for r in range(first if signal == 0 else 0, n_reps):
            rng = np.random.default_rng(5000 + r)
            ids = [f"i{k:04d}" for k in range(n)]
            rt = np.exp(rng.standard_normal(n))
            X = {
                (f"resid_post.{layer}", f"step_{p}"): rng.standard_normal((n, d)).astype(np.float32)
                for layer in range(n_layers)
                for p in range(n_positions)
            }
            X[("resid_post.1", f"step_{min(2, n_positions - 1)}")][:, 0] += signal * np.log(rt)
            items = pd.DataFrame(dict(item_id=ids, task="t", human_rt_s=rt))
            traces = pd.DataFrame(dict(model="m", item_id=ids, prompt_tokens=10))
            table, _ = sweep_store(
                MemoryStore(X, ids),
                items,
                traces,
                "human_rt",
                n_permutations=n_permutations,
                seed=r,
                **KW,
            )
            real = table[~table["site"].str.startswith("baseline:")]
            hits.append(real["p_fwe"].min() <= 0.05)
            best.append(real.loc[real["score"].idxmax(), "p_fwe"])
        label = "H0: family-wise size at .05" if signal == 0 else "planted: best site's p_fwe"
        print(f"  {label}: {share_se(hits) if signal == 0 else mean_se(best)}", flush=True)
    print(f"  ({time.process_time() - start:.0f} s CPU)", flush=True)


# ---- the real runs' regime: 300 items, 28 layers d = 1536 for teacher and student -----------
# (R1-Distill-Qwen-1.5B / Qwen2.5-Math-1.5B: d > n, the ridge's Gram route), one position (two
# for max-T)
def section_real_score(reps: int) -> None:
    section_score(0, 0, configs=[(300, 1536, reps)])


def section_real_max_t(reps: int) -> None:
    section_max_t(
        reps, n=300, n_positions=2, n_layers=28, d=1536, n_permutations=99, planted_reps=0
    )


def section_real_contrast(reps: int, dump: Path | None = None) -> None:
    section_contrast(
        reps,
        300,
        (28, 1536),
        [(28, 1536), (28, 1536, 0.2)],
        0.3,
        8,
        10,
        progress=10,
        label=" (real regime)",
        dump=dump,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the replications")
    sections = ["score", "contrast", "wide", "max_t", "real"]
    parser.add_argument(
        "--only", choices=sections + ["real_score", "real_max_t", "real_contrast"], default=None
    )
    parser.add_argument(
        "--scale", type=float, default=None, help="replications x this (--quick = 0.2)"
    )
    parser.add_argument(
        "--dump",
        type=Path,
        default=None,
        help="save each contrast replication's half-scores here (contrast, real_contrast)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    scale = args.scale or (0.2 if args.quick else 1.0)

    def reps(k: int) -> int:
        return max(10, int(k * scale))

    start = time.process_time()
    if args.only in (None, "score"):
        section_score(reps(1000), reps(400))
    if args.only in (None, "contrast"):
        section_contrast(
            reps(200), 150, (12, 40), [(2, 40), (2, 20)], 0.5, 1, 10, [(2, 40)], dump=args.dump
        )
    if args.only in (None, "wide"):
        section_contrast(reps(24), 300, (24, 256), [(8, 128)], 0.3, 8, 10)
    if args.only in (None, "max_t"):
        section_max_t(reps(150))
    # the real runs' regime is not in the default run: about 45 min of CPU on one core
    if args.only in ("real", "real_score"):
        section_real_score(reps(1600))
    if args.only in ("real", "real_max_t"):
        section_real_max_t(reps(80))
    if args.only in ("real", "real_contrast"):
        section_real_contrast(reps(40), args.dump)
    print(f"total {time.process_time() - start:.0f} s CPU")


if __name__ == "__main__":
    main()
