"""Statistics of a steering table (``experiments.steering.experiment.STEERING_COLUMNS``).

Definitions
- item cost: ``log(1 + reasoning_tokens)`` averaged over an item's samples, per (model,
  direction, alpha); item accuracy: the mean of ``correct`` likewise. Censored traces (cut at the
  budget) count at the budget; ``dose_response`` reports the finished share so that is visible.
- the *primary* alphas of a model: those every one of its directions was steered at (in a run,
  ``{-alpha_max, 0, alpha_max}``, the linear range found on fit items; random directions are
  steered there only). ``alpha_max`` is their largest |alpha|.
- ``slope``: OLS slope of item cost on alpha over the primary alphas (rows = item x alpha), in
  log-token units per unit of alpha (alpha is in units of the residual norm where the vector is
  added); ``exp(slope) - 1`` is the relative change of (1 + reasoning tokens) per unit alpha.
  ``p``: two-sided, from the same OLS with cluster-robust standard errors, items as clusters (t
  with n_items - 1 df); ``slope_lo/hi``: the matching studentised 95% CI (slope ± t × cluster SE).
  Measured at 20 items (benchmarks/steering_stats.py, 4,000 replications, MC SE 0.003–0.004;
  heavy-tailed item slopes): the CI covers 0.956 on 3 and on 5 alphas and p's size is 0.049 /
  0.042, where the percentile bootstrap over items (the earlier CI) covered 0.927 / 0.926.
- random-direction null: the primary slopes of a model's random directions (names ``random*``,
  isotropic, the same norm and alphas): ``random_lo/hi`` their 2.5 and 97.5 percentiles and
  ``p_random = (1 + #{|random slope| >= |slope|}) / (1 + n_random)``, the rank of the direction's
  |slope| among them — exact under the null that the direction acts like a random one of equal
  norm (its smallest value is 1 / (1 + n_random); measured size at 0.05 with 20: 0.048, MC SE
  0.007, where 1/21 = 0.048 is exact).
- ``slope_full``: the OLS slope over every alpha the direction was steered at (the whole curve),
  ``p_quadratic``: the cluster-robust p of the alpha² term of ``cost ~ 1 + alpha + alpha²`` on
  those alphas — a small p says the dose-response is not linear there (NaN below 3 alphas;
  measured at 20 items on 5 alphas: size 0.045, power 0.977 against -0.3 alpha²).
- ``acc_change``: OLS slope of item accuracy on alpha over the primary alphas, cluster-robust
  95% CI ``acc_lo/hi``; per-alpha accuracies with CIs are in ``dose_response``.
- ``censored_max``: the largest share of traces cut at the budget at any alpha, and the alpha
  where it occurs (``censored_alpha``): censored traces saturate at the budget, which compresses
  the slope toward 0 (per-alpha finished shares are in ``dose_response``).
- ``compare_slopes``: slope(model a) - slope(model b) per direction name, on the items both were
  steered on and the alphas both have within the smaller of their ``alpha_max``: the mean of the
  per-item slope differences with its paired t CI and p (n_items - 1 df; with every item at every
  alpha the pooled OLS slope is the mean of per-item slopes; measured coverage at 20 items 0.965,
  MC SE 0.004).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from experiments.errors import InputError

SUMMARY_COLUMNS = [
    "model",
    "direction",
    "n",
    "alpha_max",
    "slope",
    "slope_lo",
    "slope_hi",
    "p",
    "n_random",
    "random_lo",
    "random_hi",
    "p_random",
    "slope_full",
    "p_quadratic",
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
    "alpha_max",
    "slope_a",
    "slope_b",
    "diff",
    "diff_lo",
    "diff_hi",
    "p",
]
RANDOM_PREFIX = "random"
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


def cluster_fit(frame: pd.DataFrame, value: str, powers: int = 1) -> tuple[float, float, float]:
    """(coefficient, cluster-robust SE, two-sided p) of the highest power of alpha in OLS
    ``value ~ 1 + alpha + ... + alpha**powers``, SEs clustered by item (t, n_items - 1 df)."""
    a = frame["alpha"].to_numpy(float)
    design = np.column_stack([a**k for k in range(powers + 1)])
    groups = pd.factorize(frame["item_id"])[0]
    with np.errstate(invalid="ignore"):  # a degenerate design (too few items) gives NaN SEs
        fit = sm.OLS(frame[value].to_numpy(float), design).fit(
            cov_type="cluster", cov_kwds={"groups": groups}, use_t=True
        )
        coef, se = float(fit.params[-1]), float(fit.bse[-1])
    if np.isnan(se):
        return coef, np.nan, np.nan
    if not se > 1e-12 * max(1.0, abs(coef)):
        # every item moved by exactly the same amount (common random numbers make "no change at
        # all" common): no sampling variation, so the coefficient is either exactly 0 or certain
        return coef, 0.0, 1.0 if abs(coef) < 1e-12 else 0.0
    return coef, se, float(fit.pvalues[-1])


def slope_ci(frame: pd.DataFrame, value: str) -> tuple[float, float, float, float]:
    """(slope, lo, hi, p): OLS slope of ``value`` on alpha, studentised 95% CI and p."""
    slope, se, p = cluster_fit(frame, value)
    half = stats.t.ppf(0.975, frame["item_id"].nunique() - 1) * se
    return slope, slope - half, slope + half, p


def primary_alphas(means: pd.DataFrame) -> dict[str, list[float]]:
    """Per model, the alphas every one of its directions was steered at (sorted)."""
    out = {}
    for model, frame in means.groupby("model", sort=False):
        sets = [set(f["alpha"]) for _, f in frame.groupby("direction")]
        out[model] = sorted(set.intersection(*sets))
    return out


def _check_alphas(alphas, model: str, what: str) -> None:
    if len(alphas) < 2:
        raise InputError(
            f"{model}: {what} {sorted(alphas)}; a slope needs at least two alphas (include 0 and "
            "a steered value for every direction)"
        )


def summarise_steering(steering: pd.DataFrame, items: pd.DataFrame | None = None) -> pd.DataFrame:
    """Slope of item cost (and of accuracy) on alpha per (model, direction), the random-direction
    null, the whole curve's slope and its non-linearity: ``SUMMARY_COLUMNS``.

    ``items`` (optional Items table) restricts the analysis to its item ids (e.g. held-out items)."""
    means = _restrict(item_means(steering), items)
    primary = primary_alphas(means)
    rows = []
    for (model, direction), frame in means.groupby(["model", "direction"], sort=False):
        _check_alphas(primary[model], model, "its directions share only the alphas")
        main = frame[frame["alpha"].isin(primary[model])]
        slope, lo, hi, p = slope_ci(main, "cost")
        acc, acc_lo, acc_hi, _ = slope_ci(main, "accuracy")
        full = cluster_fit(frame, "cost")[0]
        quad = cluster_fit(frame, "cost", 2)[2] if frame["alpha"].nunique() >= 3 else np.nan
        censored = 1 - frame.groupby("alpha")["finished"].mean()
        worst = censored.idxmax() if censored.notna().any() else np.nan
        rows.append(
            dict(
                model=model,
                direction=direction,
                n=main["item_id"].nunique(),
                alpha_max=max(abs(a) for a in primary[model]),
                slope=slope,
                slope_lo=lo,
                slope_hi=hi,
                p=p,
                slope_full=full,
                p_quadratic=quad,
                acc_change=acc,
                acc_lo=acc_lo,
                acc_hi=acc_hi,
                censored_max=censored.max(),
                censored_alpha=worst,
            )
        )
    table = pd.DataFrame(rows)
    return _with_random_null(table).reindex(columns=SUMMARY_COLUMNS)


def _with_random_null(table: pd.DataFrame) -> pd.DataFrame:
    """Add each non-random direction's place among its model's random-direction slopes."""
    table = table.assign(n_random=0, random_lo=np.nan, random_hi=np.nan, p_random=np.nan)
    for _, frame in table.groupby("model", sort=False):
        is_random = frame["direction"].astype(str).str.startswith(RANDOM_PREFIX)
        null = frame.loc[is_random, "slope"].to_numpy(float)
        if len(null) == 0:
            continue
        lo, hi = np.percentile(null, [2.5, 97.5])
        for i in frame.index[~is_random]:
            beaten = np.sum(np.abs(null) >= abs(table.at[i, "slope"]))
            table.loc[i, ["n_random", "random_lo", "random_hi", "p_random"]] = (
                len(null),
                lo,
                hi,
                (1 + beaten) / (1 + len(null)),
            )
    return table


def dose_response(steering: pd.DataFrame, items: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (model, direction, alpha): mean item cost with a 95% t interval over items (``lo``,
    ``hi``), mean reasoning tokens, accuracy with its t interval, finished share: ``DOSE_COLUMNS``."""
    means = _restrict(item_means(steering), items)
    rows = []
    for (model, direction, alpha), frame in means.groupby(
        ["model", "direction", "alpha"], sort=True
    ):
        (lo, hi), (acc_lo, acc_hi) = (_t_interval(frame[c]) for c in ("cost", "accuracy"))
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


def _t_interval(values: pd.Series) -> tuple[float, float]:
    x = values.to_numpy(float)
    if len(x) < 2:
        return np.nan, np.nan
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return x.mean() - half, x.mean() + half


def item_slopes(frame: pd.DataFrame, alphas: list[float]) -> pd.Series:
    """Per item with a cost at every one of ``alphas``: its OLS slope of cost on alpha."""
    wide = frame[frame["alpha"].isin(alphas)].pivot(index="item_id", columns="alpha", values="cost")
    wide = wide.reindex(columns=alphas).dropna()
    a = np.asarray(alphas, dtype=float) - np.mean(alphas)
    return pd.Series(wide.to_numpy(float) @ a / (a @ a), index=wide.index)


def compare_slopes(steering: pd.DataFrame, model_a: str, model_b: str) -> pd.DataFrame:
    """slope(a) - slope(b) for every direction name both models were steered along (but the
    random controls: two models' ``random0`` are unrelated vectors), on their shared items and
    alphas (see the module docstring): ``COMPARE_COLUMNS``. Directions are matched by name (each
    model's own direction, e.g. both models' ``length``)."""
    means = item_means(steering)
    present = set(means["model"])
    for m in (model_a, model_b):
        if m not in present:
            raise InputError(
                f"model {m!r} is not in the steering table (models: {sorted(present)})"
            )
    primary = primary_alphas(means)
    reach = min(max(abs(x) for x in primary[m]) for m in (model_a, model_b))
    a, b = (means[means["model"] == m] for m in (model_a, model_b))
    rows = []
    shared = [d for d in a["direction"].unique() if d in set(b["direction"])]
    for direction in [d for d in shared if not str(d).startswith(RANDOM_PREFIX)]:
        fa, fb = a[a["direction"] == direction], b[b["direction"] == direction]
        alphas = sorted(set(fa["alpha"]) & set(fb["alpha"]))
        alphas = [x for x in alphas if abs(x) <= reach]
        _check_alphas(alphas, f"{model_a} and {model_b}", f"share for {direction!r} the alphas")
        diff = (item_slopes(fa, alphas) - item_slopes(fb, alphas)).dropna()
        if len(diff) < 2:
            raise InputError(
                f"{model_a} and {model_b} share {len(diff)} item(s) for {direction!r}; "
                "steer both on the same items"
            )
        mean, sd = diff.mean(), diff.std(ddof=1)
        half = stats.t.ppf(0.975, len(diff) - 1) * sd / np.sqrt(len(diff))
        if sd > 1e-12 * max(1.0, abs(mean)):
            p = float(2 * stats.t.sf(abs(mean) / (sd / np.sqrt(len(diff))), len(diff) - 1))
        else:  # every item's difference identical: exact
            p = 1.0 if abs(mean) < 1e-12 else 0.0
        both = diff.index
        slope_a = cluster_fit(fa[fa["item_id"].isin(both) & fa["alpha"].isin(alphas)], "cost")
        slope_b = cluster_fit(fb[fb["item_id"].isin(both) & fb["alpha"].isin(alphas)], "cost")
        rows.append(
            dict(
                model_a=model_a,
                model_b=model_b,
                direction=direction,
                n=len(diff),
                alpha_max=max(abs(x) for x in alphas),
                slope_a=slope_a[0],
                slope_b=slope_b[0],
                diff=mean,
                diff_lo=mean - half,
                diff_hi=mean + half,
                p=p,
            )
        )
    return pd.DataFrame(rows, columns=COMPARE_COLUMNS)


def _restrict(means: pd.DataFrame, items: pd.DataFrame | None) -> pd.DataFrame:
    if items is None:
        return means
    kept = means[means["item_id"].isin(set(items["item_id"]))]
    if len(kept) == 0:
        raise InputError("none of the items table's item_id values occur in the steering table")
    return kept
