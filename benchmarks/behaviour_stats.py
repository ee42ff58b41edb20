"""Benchmark: size, bias and coverage of the behavioural statistics on planted data.

Every printed behavioural CI and p is simulated here in the regime real runs live in (a few
hundred items per task, skewed or heavy-tailed costs, 4 samples per item, 2-7 tasks); the
numbers quoted in the docstrings of experiments/behaviour/ come from this script.

    python benchmarks/behaviour_stats.py            # full (a few minutes on one core)
    python benchmarks/behaviour_stats.py --quick    # a quarter of the replications

Prints one line per check: measured value, its Monte-Carlo SE and the target (size at alpha =
.05 within [0.03, 0.07]; coverage >= 0.93; bias within 2 MC SE of 0). Seeded.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from experiments.behaviour.alignment import zbar_stat  # noqa: E402
from experiments.behaviour.compare import compare_models, steiger_z  # noqa: E402
from experiments.behaviour.inflation import EQUIVALENCE_RATIO, inflation_row  # noqa: E402
from experiments.behaviour.reliability import N_SPLITS, split_halves  # noqa: E402
from experiments.behaviour.resampling import (  # noqa: E402
    bootstrap_t,
    difference,
    pearson,
    stratified_indices,
)
from experiments.behaviour.synthetic import dependent_costs, sample_costs  # noqa: E402
from experiments.behaviour.transfer import accuracy_row  # noqa: E402

ALPHA = 0.05
ROWS: list[tuple[str, str, float, float, str]] = []


def report(check: str, regime: str, values, target: str, kind: str = "rate") -> None:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    est = v.mean()
    se = np.sqrt(est * (1 - est) / len(v)) if kind == "rate" else v.std(ddof=1) / np.sqrt(len(v))
    ROWS.append((check, regime, est, se, target))
    print(f"{check:<44} {regime:<46} {est:8.4f}  (MC SE {se:.4f})  target {target}", flush=True)


def contrast_size(dist: str, n: int, reps: int, n_boot: int, rng) -> None:
    """r_a - r_b on one task under H0 (rho .5 = .5, rho_ab .6): Steiger, percentile, bootstrap-t."""
    one = [np.ones(n, bool)]
    cols = np.arange(n)
    rej = {"Steiger Z": [], "percentile bootstrap": [], "bootstrap-t (p_boot)": []}
    for _ in range(reps):
        a, b, h = dependent_costs(dist, n, rng)
        stat = difference(pearson(a, h, one), pearson(b, h, one))
        boot = stratified_indices(np.zeros(n), n_boot, rng)
        res = bootstrap_t(stat, cols, boot, one)
        reps_ = stat(boot)[0]
        p_pct = min(1.0, 2 * min(np.mean(reps_ <= 0), np.mean(reps_ >= 0)))
        r = [np.corrcoef(u, v)[0, 1] for u, v in ((a, h), (b, h), (a, b))]
        rej["Steiger Z"].append(steiger_z(*r, n)[1] < ALPHA)
        rej["percentile bootstrap"].append(p_pct < ALPHA)
        rej["bootstrap-t (p_boot)"].append(res["p"] < ALPHA)
    for name, v in rej.items():
        report(f"size r_a - r_b: {name}", f"{dist}, n={n}, H0", v, "[0.03, 0.07]")


def contrast_coverage(dist: str, n: int, reps: int, n_boot: int, rng) -> None:
    """CI of r_a - r_b at rho_a = .6, rho_b = .4 (true difference from a large sample)."""
    big = dependent_costs(dist, 400_000, np.random.default_rng(0), rho_h=(0.6, 0.4))
    truth = np.corrcoef(big[0], big[2])[0, 1] - np.corrcoef(big[1], big[2])[0, 1]
    one, cols, hits = [np.ones(n, bool)], np.arange(n), []
    for _ in range(reps):
        a, b, h = dependent_costs(dist, n, rng, rho_h=(0.6, 0.4))
        res = bootstrap_t(
            difference(pearson(a, h, one), pearson(b, h, one)),
            cols,
            stratified_indices(np.zeros(n), n_boot, rng),
            one,
        )
        hits.append(res["lo"] <= truth <= res["hi"])
    report(
        "coverage r_a - r_b CI (bootstrap-t)", f"{dist}, n={n}, diff={truth:.3f}", hits, ">= 0.93"
    )


def _tasks_frame(dist: str, k: int, n_per: int, rng, rho_h=(0.5, 0.5)):
    tasks = np.repeat([f"t{j}" for j in range(k)], n_per)
    a, b, h = (
        np.concatenate(v)
        for v in zip(
            *(dependent_costs(dist, n_per, rng, rho_h=rho_h) for _ in range(k)), strict=True
        )
    )
    shift = np.repeat(rng.normal(0, 2, (3, k)), n_per, axis=1)  # task means differ a lot
    costs, _ = sample_costs(
        {"A": (a + shift[0])[:, None], "B": (b + shift[1])[:, None]}, h + shift[2], tasks
    )
    return costs


def pooled_size(dist: str, k: int, n_per: int, reps: int, n_boot: int, rng) -> None:
    """Pooled within-task r and r-bar contrasts under H0 over k tasks with different task means."""
    rej = {"__pooled__": [], "__mean__": []}
    for _ in range(reps):
        rows = compare_models(_tasks_frame(dist, k, n_per, rng), "A", "B", n_boot=n_boot, rng=rng)
        for row in rows:
            if row["task"] in rej:
                rej[row["task"]].append(row["p_boot"] < ALPHA)
    for task, v in rej.items():
        report(
            f"size {task} contrast (p_boot)", f"{dist}, {k} tasks x {n_per}, H0", v, "[0.03, 0.07]"
        )


def rbar_checks(dist: str, k: int, n_per: int, reps: int, n_boot: int, rng) -> None:
    """alignment.csv r-bar: p_boot size at r = 0 in every task, CI coverage at r = .3/.5/.6."""
    tasks = np.repeat(np.arange(k), n_per)
    parts = [np.flatnonzero(tasks == t) for t in range(k)]
    cols = np.arange(k * n_per)
    rhos = np.array([0.3, 0.5, 0.6])[np.arange(k) % 3]
    big = [dependent_costs(dist, 400_000, np.random.default_rng(1), rho_h=(r, r)) for r in rhos]
    truth = np.tanh(np.mean([np.arctanh(np.corrcoef(x[0], x[2])[0, 1]) for x in big]))
    rej, hits = [], []
    for _ in range(reps):
        for rho, out in (((0.0,) * k, rej), (rhos, hits)):
            draws = [dependent_costs(dist, n_per, rng, rho_h=(r, r)) for r in rho]
            a, h = np.concatenate([d[0] for d in draws]), np.concatenate([d[2] for d in draws])
            res = bootstrap_t(
                zbar_stat(a, h, parts),
                cols,
                stratified_indices(tasks, n_boot, rng),
                [tasks == t for t in range(k)],
            )
            if out is rej:
                rej.append(res["p"] < ALPHA)
            else:
                hits.append(np.tanh(res["lo"]) <= truth <= np.tanh(res["hi"]))
    report("size r-bar = 0 (alignment p_boot)", f"{dist}, {k} tasks x {n_per}", rej, "[0.03, 0.07]")
    report(
        "coverage r-bar CI (alignment boot_lo/hi)",
        f"{dist}, {k} tasks, r-bar={truth:.3f}",
        hits,
        ">= 0.93",
    )


def reliability_case(reps: int, n_boot: int, rng, n: int = 256) -> None:
    """Same item policy (r = .71 with human cost), 4 samples, per-sample noise SD .3 vs 1.0."""
    raw_rej, raw_diff, dis_diff, dis_rej, dis_hit = [], [], [], [], []
    for _ in range(reps):
        h = rng.standard_normal(n)
        policy = (h + rng.standard_normal(n)) / np.sqrt(2)
        samples = {
            m: policy[:, None] + sd * rng.standard_normal((n, 4))
            for m, sd in (("A", 0.3), ("B", 1.0))
        }
        costs, long = sample_costs(samples, h)
        halves = split_halves(long, ["model", "item_id"], "value", n_splits=N_SPLITS, rng=rng)
        row = compare_models(costs, "A", "B", halves=halves, n_boot=n_boot, rng=rng)[0]
        raw_rej.append(row["p_boot"] < ALPHA)
        raw_diff.append(row["diff"])
        dis_diff.append(row["diff_disattenuated"])
        dis_rej.append(row["p_disattenuated"] < ALPHA)
        dis_hit.append(row["diff_disattenuated_lo"] <= 0 <= row["diff_disattenuated_hi"])
    regime = f"n={n}, 4 samples, noise .3 vs 1.0"
    report(
        "raw r_a - r_b (bias toward the quieter model)", regime, raw_diff, "(the defect)", "mean"
    )
    report("raw contrast rejects (p_boot < .05)", regime, raw_rej, "(the defect)")
    report("bias diff_disattenuated", regime, dis_diff, "0 within 2 MC SE", "mean")
    report("size p_disattenuated", regime, dis_rej, "[0.03, 0.07]")
    report("coverage diff_disattenuated CI", regime, dis_hit, ">= 0.93")


def accuracy_checks(reps: int, n_boot: int, rng, n: int = 200) -> None:
    """p_acc on per-item accuracy (4 samples): two nulls and CI coverage under an alternative."""
    cols, one = np.arange(n), [np.ones(n, bool)]
    rej_same, rej_mix, hits = [], [], []
    for _ in range(reps):
        p = rng.beta(2, 2, n)
        boot = stratified_indices(np.zeros(n), n_boot, rng)
        same = accuracy_row(rng.binomial(4, p) / 4, rng.binomial(4, p) / 4, cols, boot, one)
        rej_same.append(same["p_acc"] < ALPHA)
        # equal means, different shapes: student 3/4 or 1/4 at random, baseline 2/4
        mix = np.where(rng.random(n) < 0.5, 0.75, 0.25)
        rej_mix.append(accuracy_row(mix, np.full(n, 0.5), cols, boot, one)["p_acc"] < ALPHA)
        alt = accuracy_row(rng.binomial(4, p * 0.8) / 4, rng.binomial(4, p) / 4, cols, boot, one)
        hits.append(alt["acc_diff_lo"] <= -0.2 * 0.5 <= alt["acc_diff_hi"])
    report(
        "size p_acc (same item accuracies)",
        f"n={n}, Bin(4, p_i), p_i ~ Beta(2,2)",
        rej_same,
        "[0.03, 0.07]",
    )
    report("size p_acc (3/4-or-1/4 vs 2/4)", f"n={n}, equal means", rej_mix, "[0.03, 0.07]")
    report("coverage acc_diff CI", f"n={n}, student p x 0.8 (diff -0.10)", hits, ">= 0.93")


def _inflation_frame(ratios, n_per: int, rng, slope: float = 0.0, noise: float = 0.4):
    rows = []
    for t, ratio in enumerate(ratios):
        h = rng.normal(t, 0.5, n_per)  # tasks differ in difficulty too
        x = np.exp(rng.normal(6, 0.6, n_per))
        y = ratio * x * np.exp(slope * (h - t) + noise * rng.standard_normal(n_per))
        rows.append(
            pd.DataFrame({"task": f"t{t}", "mean_tokens_a": y, "mean_tokens_b": x, "human_cost": h})
        )
    frame = pd.concat(rows, ignore_index=True)
    return frame.assign(n_samples_a=4, n_samples_b=4, n_censored_a=0, n_censored_b=0)


def inflation_checks(reps: int, rng, n_per: int = 150) -> None:
    """Task ratios: Welch size/power, random-effects CI coverage, TOST size at the bound."""
    delta = np.log(EQUIVALENCE_RATIO)
    for k in (2, 3):
        rows = [inflation_row(_inflation_frame([2.44] * k, n_per, rng)) for _ in range(reps)]
        report(
            "size p_ratio_equal (Welch)",
            f"{k} tasks x {n_per}, equal 2.44x",
            [r["p_ratio_equal"] < ALPHA for r in rows],
            "[0.03, 0.07]",
        )
        report(
            "coverage pooled ratio CI (RE, HKSJ)",
            f"{k} tasks x {n_per}, equal 2.44x",
            [r["ratio_lo"] <= 2.44 <= r["ratio_hi"] for r in rows],
            ">= 0.93",
        )
        report(
            "size p_equivalent (difficulty, at bound)",
            f"{k} tasks, slope = log1.1/SD",
            [
                inflation_row(_inflation_frame([2.44] * k, n_per, rng, slope=delta / 0.5))[
                    "p_equivalent"
                ]
                < ALPHA
                for _ in range(reps)
            ],
            "<= 0.07",
        )
    het = [inflation_row(_inflation_frame([2.0, 3.0], n_per, rng)) for _ in range(reps)]
    report(
        "power p_ratio_equal, 2.0x vs 3.0x",
        f"2 tasks x {n_per}",
        [r["p_ratio_equal"] < ALPHA for r in het],
        "~1 (the defect: p 0.46)",
    )
    report(
        "p_equivalent_tasks < .05 at 2.0x vs 3.0x",
        f"2 tasks x {n_per}",
        [r["p_equivalent_tasks"] < ALPHA for r in het],
        "~0",
    )
    edge = [
        inflation_row(_inflation_frame([2.44, 2.44 * EQUIVALENCE_RATIO], n_per, rng))
        for _ in range(reps)
    ]
    report(
        "size p_equivalent_tasks (at the 1.10 bound)",
        f"2 tasks x {n_per}",
        [r["p_equivalent_tasks"] < ALPHA for r in edge],
        "<= 0.07",
    )
    tau = [
        inflation_row(
            _inflation_frame(np.exp(np.log(2.44) + 0.15 * rng.standard_normal(5)), n_per, rng)
        )
        for _ in range(reps)
    ]
    report(
        "coverage pooled ratio CI (RE, HKSJ)",
        "5 tasks, tau = 0.15 (log), mean 2.44x",
        [r["ratio_lo"] <= 2.44 <= r["ratio_hi"] for r in tau],
        ">= 0.93",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the replications")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    q = 4 if args.quick else 1
    rng = np.random.default_rng(args.seed)
    start = time.time()
    for dist in ("normal", "lognormal", "t5"):
        contrast_size(dist, 256, 500 // q, 499, rng)
    for dist in ("lognormal", "t5"):
        contrast_coverage(dist, 256, 300 // q, 499, rng)
    pooled_size("lognormal", 3, 86, 300 // q, 499, rng)
    rbar_checks("lognormal", 3, 86, 400 // q, 499, rng)
    reliability_case(600 // q, 299, rng)
    accuracy_checks(800 // q, 499, rng)
    inflation_checks(300 // q, rng)
    print(f"\n{len(ROWS)} checks in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
