"""Size, bias and coverage of the report's across-pairs test (``experiments.pipeline.report.seeds``).

Regime of the organism demo: 5 tasks of 256 / 136 / 16 / 52 / 56 items. Per item a latent
difficulty; human cost = difficulty + noise (SD 1, reliability about 0.5). Each training seed
gives a model whose cost = slope x difficulty + noise (SD 1, the mean of a few samples), the slope
drawn per seed (mean by role, seed-to-seed SD 0.15) — the luck of one training run. r̄ per model
= ``experiments.behaviour.alignment.fisher_mean`` of its within-task Pearson r's, as in
``alignment.csv``. A run draws the items once and ``n`` (teacher, student) seed pairs;
``across_pairs`` tests mean d = r̄_teacher − r̄_student = 0.

- null: both roles' mean slope 0.8 — bias (mean estimate), size of the t-test and of the
  sign-flip test at α = .05;
- alternative: teacher 0.8, student 0.5 — coverage of the 95% t CI of the true mean d for those
  items (the mean d over 1,000 seed pairs).

    python -m benchmarks.seeds_pairs             # 1,000 runs per cell
    python -m benchmarks.seeds_pairs --runs 200  # quicker, noisier

Measured here (1,000 runs per row; the numbers quoted in the seeds section's docstring):

    pairs    bias  size t size sign coverage
        3  0.0002   0.052     0.000    0.949
        5  0.0002   0.052     0.000    0.944
       14  0.0007   0.058     0.060    0.948
"""

from __future__ import annotations

import argparse

import numpy as np

from experiments.behaviour.alignment import fisher_mean
from experiments.pipeline.report.seeds import across_pairs

SIZES = (256, 136, 16, 52, 56)
SEED_SD = 0.15


def _items(rng):
    latent = [rng.normal(size=n) for n in SIZES]
    human = [d + rng.normal(size=d.size) for d in latent]
    return latent, human


def _rbar(slopes, latent, human, rng):
    """r̄ of models with the given slopes (one per row), vectorised over models."""
    r = []
    for d, h in zip(latent, human):
        cost = slopes[:, None] * d[None] + rng.normal(size=(len(slopes), d.size))
        c = cost - cost.mean(1, keepdims=True)
        hc = h - h.mean()
        r.append((c @ hc) / np.sqrt((c**2).sum(1) * (hc**2).sum()))
    r = np.array(r).T
    rbar = np.tanh(np.arctanh(r).mean(1))  # fisher_mean's r, vectorised (checked on row 0)
    assert np.isclose(rbar[0], fisher_mean(r[0], np.array(SIZES))["r"])
    return rbar


def _pair_diffs(n, mean_t, mean_s, latent, human, rng):
    t = _rbar(rng.normal(mean_t, SEED_SD, n), latent, human, rng)
    s = _rbar(rng.normal(mean_s, SEED_SD, n), latent, human, rng)
    return t - s


def main(runs: int) -> None:
    rng = np.random.default_rng(0)
    print(f"{'pairs':>5} {'bias':>7} {'size t':>7} {'size sign':>9} {'coverage':>8}")
    for n in (3, 5, 14):
        est, rej_t, rej_s, cover = [], 0, 0, 0
        for _ in range(runs):
            latent, human = _items(rng)
            null = across_pairs(_pair_diffs(n, 0.8, 0.8, latent, human, rng))
            est.append(null["mean"])
            rej_t += null["p_t"] < 0.05
            rej_s += null["p_sign"] < 0.05
            truth = _pair_diffs(1000, 0.8, 0.5, latent, human, rng).mean()
            alt = across_pairs(_pair_diffs(n, 0.8, 0.5, latent, human, rng))
            cover += alt["lo"] <= truth <= alt["hi"]
        print(
            f"{n:>5} {np.mean(est):>7.4f} {rej_t / runs:>7.3f} {rej_s / runs:>9.3f} "
            f"{cover / runs:>8.3f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    main(parser.parse_args().runs)
