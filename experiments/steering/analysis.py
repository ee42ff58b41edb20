"""Statistics of a steering table (``experiments.steering.experiment.STEERING_COLUMNS``).

Definitions
- item cost: ``log(1 + reasoning_tokens)`` averaged over an item's samples, per (model,
  direction, alpha); item accuracy: the mean of ``correct`` likewise. Censored traces (cut at the
  budget) count at the budget; ``dose_response`` reports the finished share so that is visible.
- ``slope``: OLS slope of item cost on alpha (statsmodels, rows = item x alpha), in log-token units
  per unit of alpha (alpha is in units of the residual norm at the site); ``exp(slope) - 1`` is the
  relative change of (1 + reasoning tokens) per unit alpha. ``slope_lo/hi``: 95% percentile
  bootstrap over items (an item's rows at every alpha are resampled together). ``p``: two-sided p
  of the slope from the same OLS with cluster-robust standard errors, items as clusters (t with
  n_items - 1 df) — not from the bootstrap.
- ``acc_change``: OLS slope of item accuracy on alpha (change in accuracy per unit alpha), with
  its bootstrap CI ``acc_lo/hi``; per-alpha accuracies with CIs are in ``dose_response``.
- ``censored_max``: the largest share of traces cut at the budget at any alpha, and the alpha
  where it occurs (``censored_alpha``): censored traces saturate at the budget, which compresses
  the slope toward 0 (per-alpha finished shares are in ``dose_response``).
- ``compare_slopes``: slope(model a) - slope(model b) per direction name, bootstrap CI over the
  items both models were steered on (the same resamples for both), p = two-sided bootstrap p
  ``min(1, 2 (1 + #{diff* on the far side of 0}) / (n_boot + 1))``.
- ``human_alignment``: within-task Pearson r of item cost vs log human RT at each alpha, and
  Steiger's Z for r(alpha) vs r(0) (dependent correlations sharing the human variable).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm

from experiments.errors import InputError
from probes.metrics import group_counts

SUMMARY_COLUMNS = [
    "model",
    "direction",
    "n",
    "slope",
    "slope_lo",
    "slope_hi",
    "p",
    "acc_change",
    "acc_lo",
    "acc_hi",
    "censored_max",
    "censored_alpha",
]
DOSE_COLUMNS = [
    "model",
    "direction",
    "alpha",
    "n",
    "mean_log_tokens",
    "lo",
    "hi",
    "mean_tokens",
    "accuracy",
    "acc_lo",
    "acc_hi",
    "finished",
]
COMPARE_COLUMNS = [
    "model_a",
    "model_b",
    "direction",
    "n",
    "slope_a",
    "slope_b",
    "diff",
    "diff_lo",
    "diff_hi",
    "p",
]
ALIGNMENT_COLUMNS = [
    "model",
    "direction",
    "alpha",
    "task",
    "n",
    "r",
    "r_lo",
    "r_hi",
    "p",
    "r_change",
    "z_vs_0",
    "p_vs_0",
    "reason",
]
_REQUIRED = ("model", "direction", "alpha", "item_id", "sample", "reasoning_tokens", "correct")


def item_means(steering: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, direction, alpha, item_id): ``cost`` (mean log(1+tokens)), ``tokens``,
    ``accuracy``, ``finished`` (means over samples), ``task`` (if present)."""
    missing = [c for c in _REQUIRED if c not in steering.columns]
    if missing:
        raise InputError(
            f"steering table lacks column(s) {missing}; write it with run_steering / `handan steer`"
        )
    if len(steering) == 0:
        raise InputError("the steering table is empty; nothing to summarise")
    frame = steering.assign(
        cost=np.log1p(steering["reasoning_tokens"].astype(float)),
        tokens=steering["reasoning_tokens"].astype(float),
        accuracy=steering["correct"].astype(float),
        finished=steering["finished_thinking"].astype(float)
        if "finished_thinking" in steering
        else np.nan,
    )
    keys = ["model", "direction", "alpha", "item_id"] + (["task"] if "task" in steering else [])
    return (
        frame.groupby(keys, sort=True, observed=True)[["cost", "tokens", "accuracy", "finished"]]
        .mean()
        .reset_index()
    )


def _suff_stats(frame: pd.DataFrame, value: str, order: pd.Index) -> np.ndarray:
    """Per-item sums ``[n_items, 5]``: count, sum a, sum y, sum a^2, sum a*y (items in ``order``)."""
    a, y = frame["alpha"].to_numpy(float), frame[value].to_numpy(float)
    parts = pd.DataFrame(
        {"item_id": frame["item_id"].to_numpy(), "n": 1.0, "a": a, "y": y, "aa": a * a, "ay": a * y}
    )
    return parts.groupby("item_id").sum().reindex(order).to_numpy()


def _ols_slope_from(sums: np.ndarray) -> np.ndarray:
    """OLS slope of y on a from pooled sums ``[..., 5]`` (count, Sa, Sy, Saa, Say).

    The bootstrap uses this closed form on count-weighted item sums — exactly the OLS slope on the
    resampled rows — because refitting statsmodels 2000 times per (model, direction) takes ~1 s
    each where this takes ~1 ms."""
    n, sa, sy, saa, say = np.moveaxis(sums, -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (n * say - sa * sy) / (n * saa - sa * sa)


def _cluster_ols(frame: pd.DataFrame, value: str) -> tuple[float, float]:
    """(slope, two-sided p) of OLS value ~ 1 + alpha, SEs clustered by item."""
    design = sm.add_constant(frame["alpha"].to_numpy(float), has_constant="add")
    groups = pd.factorize(frame["item_id"])[0]
    fit = sm.OLS(frame[value].to_numpy(float), design).fit(
        cov_type="cluster", cov_kwds={"groups": groups}, use_t=True
    )
    slope, se = float(fit.params[1]), float(fit.bse[1])
    if not se > 1e-12 * max(1.0, abs(slope)):
        # every item moved by exactly the same amount (common random numbers make "no change at
        # all" common): no sampling variation, so the slope is either exactly 0 or certain
        return slope, 1.0 if abs(slope) < 1e-12 else 0.0
    return slope, float(fit.pvalues[1])


def _check_alphas(frame: pd.DataFrame, model: str, direction: str) -> None:
    if frame["alpha"].nunique() < 2:
        raise InputError(
            f"{model}/{direction} has a single alpha ({frame['alpha'].iloc[0]}); a slope needs "
            "at least two alphas (include 0 and a steered value)"
        )


def summarise_steering(
    steering: pd.DataFrame, items: pd.DataFrame | None = None, *, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Slope of item cost (and of accuracy) on alpha per (model, direction): ``SUMMARY_COLUMNS``.

    ``items`` (optional Items table) restricts the analysis to its item ids (e.g. held-out items)."""
    means = _restrict(item_means(steering), items)
    rng = np.random.default_rng(seed)
    rows = []
    for (model, direction), frame in means.groupby(["model", "direction"], sort=False):
        _check_alphas(frame, model, direction)
        order = pd.Index(frame["item_id"].unique())
        counts = group_counts(len(order), n_boot, rng)
        slope, p = _cluster_ols(frame, "cost")
        acc, _ = _cluster_ols(frame, "accuracy")
        boot = _ols_slope_from(counts @ _suff_stats(frame, "cost", order))
        boot_acc = _ols_slope_from(counts @ _suff_stats(frame, "accuracy", order))
        lo, hi = np.nanpercentile(boot, [2.5, 97.5])
        acc_lo, acc_hi = np.nanpercentile(boot_acc, [2.5, 97.5])
        censored = 1 - frame.groupby("alpha")["finished"].mean()
        worst = censored.idxmax() if censored.notna().any() else np.nan
        rows.append(
            dict(
                model=model,
                direction=direction,
                n=len(order),
                slope=slope,
                slope_lo=lo,
                slope_hi=hi,
                p=p,
                acc_change=acc,
                acc_lo=acc_lo,
                acc_hi=acc_hi,
                censored_max=censored.max(),
                censored_alpha=worst,
            )
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def dose_response(
    steering: pd.DataFrame, items: pd.DataFrame | None = None, *, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Per (model, direction, alpha): mean item cost with a 95% percentile bootstrap CI over items
    (``lo``, ``hi``), mean reasoning tokens, accuracy with CI, finished share: ``DOSE_COLUMNS``."""
    means = _restrict(item_means(steering), items)
    rng = np.random.default_rng(seed)
    rows = []
    for (model, direction, alpha), frame in means.groupby(
        ["model", "direction", "alpha"], sort=True
    ):
        counts = group_counts(len(frame), n_boot, rng) / len(frame)
        boot = counts @ frame[["cost", "accuracy"]].to_numpy(float)  # [n_boot, 2] resampled means
        (lo, acc_lo), (hi, acc_hi) = np.percentile(boot, [2.5, 97.5], axis=0)
        rows.append(
            dict(
                model=model,
                direction=direction,
                alpha=alpha,
                n=len(frame),
                mean_log_tokens=frame["cost"].mean(),
                lo=lo,
                hi=hi,
                mean_tokens=frame["tokens"].mean(),
                accuracy=frame["accuracy"].mean(),
                acc_lo=acc_lo,
                acc_hi=acc_hi,
                finished=frame["finished"].mean(),
            )
        )
    return pd.DataFrame(rows, columns=DOSE_COLUMNS)


def compare_slopes(
    steering: pd.DataFrame, model_a: str, model_b: str, *, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """slope(a) - slope(b) for every direction name both models were steered along, on their shared
    items, with a paired bootstrap over items: ``COMPARE_COLUMNS``. Directions are matched by name
    (each model's own direction, e.g. both models' ``length``)."""
    means = item_means(steering)
    rng = np.random.default_rng(seed)
    present = set(means["model"])
    for m in (model_a, model_b):
        if m not in present:
            raise InputError(
                f"model {m!r} is not in the steering table (models: {sorted(present)})"
            )
    a, b = (means[means["model"] == m] for m in (model_a, model_b))
    rows = []
    for direction in [d for d in a["direction"].unique() if d in set(b["direction"])]:
        fa, fb = a[a["direction"] == direction], b[b["direction"] == direction]
        shared = pd.Index(sorted(set(fa["item_id"]) & set(fb["item_id"])))
        if len(shared) < 2:
            raise InputError(
                f"{model_a} and {model_b} share {len(shared)} item(s) for {direction!r}; "
                "steer both on the same items"
            )
        fa, fb = fa[fa["item_id"].isin(shared)], fb[fb["item_id"].isin(shared)]
        _check_alphas(fa, model_a, direction)
        _check_alphas(fb, model_b, direction)
        counts = group_counts(len(shared), n_boot, rng)
        sa, sb = (_cluster_ols(f, "cost")[0] for f in (fa, fb))
        boot = _ols_slope_from(counts @ _suff_stats(fa, "cost", shared)) - _ols_slope_from(
            counts @ _suff_stats(fb, "cost", shared)
        )
        lo, hi = np.nanpercentile(boot, [2.5, 97.5])
        p = min(1.0, 2 * (1 + min(np.sum(boot <= 0), np.sum(boot >= 0))) / (n_boot + 1))
        rows.append(
            dict(
                model_a=model_a,
                model_b=model_b,
                direction=direction,
                n=len(shared),
                slope_a=sa,
                slope_b=sb,
                diff=sa - sb,
                diff_lo=lo,
                diff_hi=hi,
                p=p,
            )
        )
    return pd.DataFrame(rows, columns=COMPARE_COLUMNS)


def human_alignment(steering: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Within-task Pearson r of item cost vs log(human_rt_s) at each alpha (Fisher-z CI), and
    whether it moved: ``r_change`` = r(alpha) - r(0), Steiger's Z / p for r(alpha) vs r(0) on the
    same items: ``ALIGNMENT_COLUMNS``. Items without a positive human RT are left out."""
    from experiments.behaviour.alignment import correlate
    from experiments.behaviour.compare import steiger_z

    if "human_rt_s" not in items.columns:
        raise InputError(
            "the items table has no human_rt_s column; human alignment needs human RTs"
        )
    human = items[["item_id", "human_rt_s"]].dropna()
    human = human[human["human_rt_s"] > 0].assign(
        log_rt=lambda f: np.log(f["human_rt_s"].astype(float))
    )
    means = item_means(steering).merge(human[["item_id", "log_rt"]], on="item_id")
    if "task" not in means:
        means["task"] = "all"
    rows = []
    for (model, direction, task), frame in means.groupby(
        ["model", "direction", "task"], sort=False
    ):
        wide = frame.pivot(index="item_id", columns="alpha", values="cost").dropna()
        rt = (
            frame.drop_duplicates("item_id")
            .set_index("item_id")
            .loc[wide.index, "log_rt"]
            .to_numpy(float)
        )
        base = wide[0.0].to_numpy(float) if 0.0 in wide.columns else None
        r0 = (
            correlate(base, rt, n_boot=0, rng=np.random.default_rng(0))["r"]
            if base is not None
            else np.nan
        )
        for alpha in wide.columns:
            cost = wide[alpha].to_numpy(float)
            row = correlate(cost, rt, n_boot=0, rng=np.random.default_rng(0))
            z = p_vs = np.nan
            if base is not None and alpha != 0 and not row["reason"] and np.isfinite(r0):
                r_kh = np.corrcoef(cost, base)[0, 1]
                z, p_vs = (float(v) for v in steiger_z(row["r"], r0, r_kh, len(cost)))
            rows.append(
                dict(
                    model=model,
                    direction=direction,
                    alpha=float(alpha),
                    task=task,
                    n=row["n"],
                    r=row["r"],
                    r_lo=row["r_lo"],
                    r_hi=row["r_hi"],
                    p=row["p"],
                    r_change=row["r"] - r0,
                    z_vs_0=z,
                    p_vs_0=p_vs,
                    reason=row["reason"],
                )
            )
    return pd.DataFrame(rows, columns=ALIGNMENT_COLUMNS)


def _restrict(means: pd.DataFrame, items: pd.DataFrame | None) -> pd.DataFrame:
    if items is None:
        return means
    kept = means[means["item_id"].isin(set(items["item_id"]))]
    if len(kept) == 0:
        raise InputError("none of the items table's item_id values occur in the steering table")
    return kept
