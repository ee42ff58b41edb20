"""The one resampling procedure behind every behavioural contrast: a studentised (bootstrap-t)
bootstrap over items, stratified by task.

A statistic is a function ``stat(ix) -> (est, infl)`` of a ``(B, n)`` matrix of row indices (one
resample per row): ``est`` (B,) is the estimate on each resample and ``infl`` (B, n) the
empirical influence of each drawn item, scaled so that est - theta ~ mean(infl). Its standard
error is that of a stratified mean of influences, ``se = sqrt(sum over strata of sum (infl -
stratum mean)^2) / n``. The test of H0: theta = null compares ``t = (est - null) / se`` with the
bootstrap distribution of ``t* = (est* - est) / se*`` (symmetric: ``p = (1 + #{|t*| >= |t|}) /
(1 + B)``); the 95% CI is ``est -+ q se`` with ``q`` the 95% quantile of ``|t*|``, so ``p <
.05`` exactly when the CI excludes ``null`` (up to the +1).

Why studentised (measured by ``benchmarks/behaviour_stats.py``, alpha = .05, H0 true, n = 256
items, rho(a, h) = rho(b, h) = .5, rho(a, b) = .6, 500 replications, B = 499, MC SE ~0.01):
Steiger's normal-theory Z has size 0.116 when all three variables are lognormal (sigma 0.5) and
0.214 under a multivariate t(5); a percentile bootstrap of r_a - r_b 0.058 and 0.076; this
bootstrap-t 0.046 and 0.054 (0.048 under normality; an exploratory run of 1,500 replications
gave 0.054 and 0.047, the percentile 0.060 and 0.067). CI coverage at rho .6 vs .4: 0.930
(lognormal), 0.950 (t(5)). Stratified over 3 tasks of 86 items (lognormal, task means apart):
size 0.033 for the pooled within-task contrast, 0.053 for the r-bar difference; r-bar = 0:
size 0.045, r-bar CI coverage 0.958.

Resamples are drawn within strata (tasks), so pooled statistics keep each task's size, and
everything that is estimated from the data (task means, standardisation, reliabilities) is
re-estimated on each resample.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Stat = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
_R_MAX = 1 - 1e-12
_CHUNK_CELLS = 2_000_000  # resample cells (rows x items x leading dims) computed at once


def stratified_indices(codes: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, N) row indices; column j always draws, with replacement, from the stratum of j."""
    codes = np.asarray(codes)
    idx = np.empty((n_boot, len(codes)), dtype=np.intp)
    for code in np.unique(codes):
        pos = np.flatnonzero(codes == code)
        idx[:, pos] = pos[rng.integers(0, len(pos), size=(n_boot, len(pos)))]
    return idx


def strata_masks(codes: np.ndarray) -> list[np.ndarray]:
    """One boolean mask per stratum of ``codes``."""
    codes = np.asarray(codes)
    return [codes == c for c in np.unique(codes)]


def _centred(v: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """``v`` minus its mean within each stratum, along the last axis."""
    v = np.asarray(v, dtype=float)
    if len(masks) == 1:
        return v - v.mean(axis=-1, keepdims=True)
    onehot = np.stack(masks, axis=1).astype(float)
    return v - ((v @ onehot) / onehot.sum(axis=0)) @ onehot.T


def _standardised(v: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    c = _centred(v, masks)
    with np.errstate(invalid="ignore", divide="ignore"):
        return c / np.sqrt((c**2).mean(axis=-1, keepdims=True))


def pearson_influence(x: np.ndarray, y: np.ndarray, masks: list[np.ndarray]):
    """(r, influence) along the last axis, x and y centred within each stratum first (the pooled
    within-task r; plain Pearson r for one stratum). Influence of item i:
    z_x z_y - r (z_x^2 + z_y^2) / 2 on the standardised values (Devlin et al. 1975)."""
    zx, zy = _standardised(x, masks), _standardised(y, masks)
    r = (zx * zy).mean(axis=-1)
    return r, zx * zy - r[..., None] / 2 * (zx**2 + zy**2)


def pearson(x: np.ndarray, y: np.ndarray, masks: list[np.ndarray]) -> Stat:
    """The (within-stratum) Pearson r of x and y as a statistic."""
    return lambda ix: pearson_influence(x[ix], y[ix], masks)


def fisher(stat: Stat) -> Stat:
    """atanh of a correlation statistic (delta method for the influence)."""

    def out(ix):
        r, infl = stat(ix)
        r = np.clip(r, -_R_MAX, _R_MAX)
        return np.arctanh(r), infl / (1 - r[..., None] ** 2)

    return out


def tanh(stat: Stat) -> Stat:
    """tanh of a statistic (back from Fisher z)."""

    def out(ix):
        z, infl = stat(ix)
        r = np.tanh(z)
        return r, infl * (1 - r[..., None] ** 2)

    return out


def difference(a: Stat, b: Stat) -> Stat:
    """a - b on the same resampled items (paired)."""

    def out(ix):
        ea, ia = a(ix)
        eb, ib = b(ix)
        return ea - eb, ia - ib

    return out


def mean_of(d: np.ndarray) -> Stat:
    """The mean of per-item values ``d`` (e.g. paired differences)."""

    def out(ix):
        v = d[ix]
        m = v.mean(axis=-1)
        return m, v - m[..., None]

    return out


def task_mean(parts: list[tuple[np.ndarray, Stat]], n: int) -> Stat:
    """Unweighted mean over tasks of per-task statistics; ``parts`` = (positions of the task's
    items among the n, its statistic). Each item's influence is scaled by n / (k n_task)."""
    k = len(parts)

    def out(ix):
        est = np.zeros(ix.shape[:-1])
        infl = np.zeros(ix.shape)
        for pos, stat in parts:
            e, i = stat(ix[..., pos])
            est += e / k
            infl[..., pos] = i * n / (k * len(pos))
        return est, infl

    return out


def positions(parts: list[np.ndarray]) -> list[np.ndarray]:
    """Where each part lies in ``np.concatenate(parts)`` (for :func:`task_mean`)."""
    start = np.cumsum([0] + [len(p) for p in parts])
    return [np.arange(s, s + len(p)) for p, s in zip(parts, start, strict=False)]


def value(stat: Stat, cols: np.ndarray) -> float:
    """The statistic on the sample itself (rows ``cols``)."""
    return float(stat(np.asarray(cols)[None])[0][0])


def influence_se(infl: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """Standard error of a statistic from its influences, stratified (see module docstring)."""
    c = _centred(infl, masks)
    return np.sqrt((c**2).sum(axis=-1)) / infl.shape[-1]


def bootstrap_t(
    stat: Stat,
    cols: np.ndarray,
    boot_ix: np.ndarray,
    masks: list[np.ndarray],
    *,
    null: float = 0.0,
    cells_per_row: int = 1,
) -> dict:
    """Estimate, SE, symmetric bootstrap-t 95% CI and two-sided p for H0: theta = null.

    ``cols`` are the rows of the statistic's arrays that form the sample, ``boot_ix`` (B, n)
    resampled rows (``boot_ix`` with B = 0 gives NaN CI and p), ``masks`` the strata over the n
    positions; ``cells_per_row`` the leading-dimension size of the statistic (e.g. the number of
    split halves), which bounds memory. Resamples whose SE is 0 or undefined are left out."""
    est, infl = stat(np.asarray(cols)[None])
    est, se = float(est[0]), float(influence_se(infl, masks)[0])
    out = {"est": est, "se": se, "lo": np.nan, "hi": np.nan, "p": np.nan}
    if not (np.isfinite(est) and np.isfinite(se) and se > 0) or len(boot_ix) == 0:
        return out
    step = max(1, _CHUNK_CELLS // (boot_ix.shape[1] * cells_per_row))
    t = []
    for start in range(0, len(boot_ix), step):
        e, i = stat(boot_ix[start : start + step])
        with np.errstate(invalid="ignore", divide="ignore"):
            t.append((e - est) / influence_se(i, masks))
    t = np.abs(np.concatenate(t))
    t = t[np.isfinite(t)]
    if len(t) == 0:
        return out
    q = float(np.quantile(t, 0.95))
    observed = abs(est - null) / se
    out.update(
        lo=est - q * se,
        hi=est + q * se,
        p=float((1 + np.sum(t >= observed)) / (1 + len(t))),
    )
    return out
