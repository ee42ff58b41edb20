"""Selection-adjusted probe scores: pick on one half of the items, score on the other, with a
cross-validation refitted inside each half, over many random halvings.

A sweep's best site is a maximum over layers x positions, and its score is biased upward the more
keys there are (winner's curse). Picking on one half of the out-of-fold predictions of one sweep
and scoring on the other is not enough: both halves were predicted by the same fitted probes, so
a key whose fit happened to be good is good on both halves (equal signal at every layer, 150
items: +0.044 teacher - student at 8 vs 2 layers, d = 20, and +0.057 at 12 vs 2, d = 40, in issue
14; +0.041, MC SE 0.010, at 12 vs 2, d = 40, in ``benchmarks/probe_stats.py``).
Here every half runs its own grouped, nested CV (``half_scores``): the key picked on half B was
fitted and scored on B's items only, and it is scored on half A by a CV fitted on A's items only.

Estimand of ``best_site`` (and of ``probes.contrasts.compare``'s ``best_layer`` rows): the
fold-wise CV score, at half the items, of the key that an independent half of the data picks —
a score a new study of the same size / 2 could expect from this pipeline's pick. At equal signal
at every key it equals any fixed key's half-sample score, whatever the number of keys.

Inference (``crossfit_ci``): the estimate is the mean of 2S half-estimates. Its variance has two
parts: which items were sampled, and which halvings were drawn. The first is the variance of a
paired bootstrap over items — every half-score recomputed with the items reweighted by bootstrap
counts, the pick redone in each draw, the counts shared by every model on the same halves (so
contrasts are paired); multi-feature probes keep their fitted predictions, one-feature baselines
are refitted exactly (``probes.metrics.one_feature_refit_scores``: their refits flip sign, which
fixed predictions cannot show). The second is the variance of the S halvings' means divided by
S. Normal CI and p from their sum. The bootstrap alone is too narrow (coverage 0.905-0.910 for
contrasts); the half-estimates' plain standard error ignores that halvings share items (far too
small); Nadeau & Bengio's corrected resampled t, which assumes a correlation of 1/2 between
halvings, is far too wide (coverage 1.000): the halvings' estimates are nearly independent given
the data, most of their noise being the split's own. Measured by ``benchmarks/probe_stats.py``:
``probes.contrasts.compare`` and ``best_site``.

Where the CI is conservative: with fewer items than features (the 1.5B models, d = 1,536, 300
items; 28 layers each, equal signal; ``--only real_contrast``, 100 replications) the teacher -
student estimate's SD over replications is 0.0385 while the CI's SE is 0.0575 (1.49x): size 0.000
(0 of 100) at alpha = .05, coverage 1.000 at truth 0, 1.000 at truth +0.08. The halvings' term is
right — on one data set, ten runs of ten halvings each had an SD of 0.036 where var(per-split
means) / 10 gave 0.034 — and it is nearly all of the estimate's variance there (0.00134 of
0.00149): the item-sampling part, var(E[estimate | data]), is close to 0 (0.00015). The bootstrap
adds 0.00197 anyway, 0.00168 of it each halving's own draw-to-draw variance (the picks and the
fixed predictions' test noise). Our reading, not proven: at d < n that term stands in for the
items' training-side influence, which a bootstrap with fixed fits cannot see, and at d > n it
counts the halvings' noise a second time. Three cheaper estimators
(``benchmarks/contrast_variance.py``: picks held fixed; a method of moments from the two halves;
the across-halving bootstrap covariance only) read size 0.040 / 0.030 / 0.080 at d > n but
under-cover at 150 items, d = 40 (0.880 / 0.800 / 0.855), so the CI keeps the one estimator that
never falls below its level in either regime, at the price of width (power) at d > n. A bootstrap
that refits every draw is the principled repair (B times the fits; not built). At d > n more
halvings help most: the halvings' share of the variance falls as 1 / ``n_splits`` (the 1.5B run
config uses 40).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.stats as st
import torch

from experiments.errors import InputError
from probes.checks import check_groups, check_task, grouped_folds
from probes.layer_sweep import DEFAULT_ALPHAS, cv_predictions, layer_of, split_key
from probes.metrics import (
    METRICS,
    fold_scores,
    group_counts,
    one_feature_refit_scores,
    score_columns,
)

BASELINE_PREFIX = "baseline:"
#: halvings per estimate: the estimate's variance is sigma^2 (rho + (1 - rho) / 2S) for
#: half-estimates of variance sigma^2 and correlation rho, so past ten the gain is small
N_SPLITS = 10
#: bootstrap draws for the item-sampling variance (a standard error, not percentiles: 200 give
#: it to about 5%)
N_BOOT = 200
#: keys fitted together in one batch (bounds the memory of [K, n, d] float64 stacks)
KEY_BATCH = 16


def half_splits(
    item_ids: Sequence[str], n_splits: int, seed: int, strata: Sequence[str] | None = None
) -> pd.DataFrame:
    """``n_splits`` random halvings of the items, stratified by ``strata`` (e.g. the task): a
    0/1 DataFrame [items, splits] indexed by item id (str). The same item set and seed give the
    same halves, so two models probed on the same items are split alike (paired contrasts)."""
    if n_splits < 1:
        raise InputError(f"n_splits={n_splits}; cross-fitting needs at least one halving")
    stratum_of = pd.Series(
        [""] * len(item_ids) if strata is None else [str(x) for x in strata],
        index=[str(i) for i in item_ids],
    )
    stratum_of = stratum_of[~stratum_of.index.duplicated()].sort_index()
    ids = pd.Index(stratum_of.index, name="item_id")
    labels = np.unique(stratum_of.to_numpy(), return_inverse=True)[1]
    rng = np.random.default_rng(seed)
    halves = np.empty((len(ids), n_splits), dtype=np.int64)
    for s in range(n_splits):
        for stratum in np.unique(labels):
            members = np.flatnonzero(labels == stratum)
            # alternate 0/1 over a random order; a random start balances odd strata across splits
            halves[rng.permutation(members), s] = (np.arange(len(members)) + rng.integers(2)) % 2
    return pd.DataFrame(halves, index=ids)


def halves_id(halves: pd.DataFrame) -> str:
    """A fingerprint of a halving (items and assignments): contrasts need the same one."""
    payload = "|".join(halves.index) + "#" + halves.to_numpy().tobytes().hex()
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class HalfScores:
    """Every key's fold-wise CV score inside each half of each halving, and its bootstrap.

    ``keys`` [K] ("site|position", ``baseline:*`` included), ``depth`` [K], ``scores`` [S, 2, K],
    ``boot`` [S, 2, K, B] (the same half-scores with the items reweighted by bootstrap counts:
    the fitted predictions held fixed, the counts drawn once per halving id and seed, so two
    models on the same halves share them — a paired bootstrap), ``n_items`` (fewest items in a
    half), ``metric``, ``halves_id``, ``item_ids`` (the halving's items), ``target`` ("" when
    unknown)."""

    keys: list[str]
    depth: np.ndarray
    scores: np.ndarray
    boot: np.ndarray
    n_items: int
    metric: str
    halves_id: str
    item_ids: list[str]
    target: str = ""

    def select(self, keep: Sequence[bool]) -> HalfScores:
        """The same halves restricted to the keys where ``keep`` is true."""
        keep = np.asarray(keep, dtype=bool)
        return replace(
            self,
            keys=[k for k, m in zip(self.keys, keep, strict=True) if m],
            depth=self.depth[keep],
            scores=self.scores[:, :, keep],
            boot=self.boot[:, :, keep],
        )

    def concat(self, other: HalfScores) -> HalfScores:
        """Keys of two positions of one model on the same halves side by side."""
        if other.halves_id != self.halves_id:
            raise InputError("the two half-score sets were split into different halves")
        return replace(
            self,
            keys=self.keys + other.keys,
            depth=np.concatenate([self.depth, other.depth]),
            scores=np.concatenate([self.scores, other.scores], axis=2),
            boot=np.concatenate([self.boot, other.boot], axis=2),
            n_items=min(self.n_items, other.n_items),
        )

    def table(self) -> pd.DataFrame:
        """Long form: split, half, key, site, position, depth, metric, score."""
        S, _, K = self.scores.shape
        split, half, key = np.meshgrid(np.arange(S), (0, 1), np.arange(K), indexing="ij")
        keys = np.asarray(self.keys)[key.ravel()]
        return pd.DataFrame(
            {
                "split": split.ravel(),
                "half": half.ravel(),
                "key": keys,
                "site": [split_key(k)[0] for k in keys],
                "position": [split_key(k)[1] for k in keys],
                "depth": self.depth[key.ravel()],
                "metric": self.metric,
                "score": self.scores.ravel(),
            }
        )


def half_scores(
    features: Mapping[str, np.ndarray],
    y: np.ndarray,
    groups: np.ndarray,
    halves: pd.DataFrame,
    *,
    task: str = "regression",
    cv: int = 5,
    inner_cv: int | None = None,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    n_layers: int | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
    target: str = "",
    device: str | torch.device | None = None,
    dtype: str = "float64",
) -> HalfScores:
    """Fold-wise CV score of every key inside each half of each halving, with its bootstrap.

    ``features`` {"site|position": X [n, d]} (``baseline:*`` keys allowed) on rows aligned with
    ``y`` [n] and ``groups`` [n] (item ids, in ``halves``' index); ``halves`` from
    ``half_splits``. Each half runs ``sweep``'s protocol on its own items: grouped outer
    ``cv``-fold CV (folds seeded by ``seed`` + split), alpha by inner CV, scored fold-wise. Keys
    of one width are fitted as one batch; a one-feature key (a trivial baseline) needs no fit, as
    its ridge ranks each test fold by sign(training covariance) * x, whatever alpha
    (``probes.metrics.one_feature_refit_scores``; equal to the ridge, tested). ``n_boot`` bootstrap draws of item counts over
    ``halves``' items (seeded by ``seed``: the same for every model on these halves)."""
    check_task(task)
    y = np.asarray(y, dtype=np.float64)
    groups = np.asarray(groups).astype(str)
    check_groups(groups, len(y), cv)
    missing = sorted(set(groups) - set(halves.index))
    if missing:
        raise InputError(
            f"{len(missing)} item(s) of the probe rows are not in the halving (e.g. "
            f"{missing[:3]}); make the halves from the same items (half_splits)"
        )
    inner_cv = cv if inner_cv is None else inner_cv
    alphas = np.asarray(alphas, dtype=np.float64)
    keys = list(features)
    by_width: dict[int, list[int]] = {}
    for k, key in enumerate(keys):
        by_width.setdefault(np.asarray(features[key]).shape[1], []).append(k)
    item = halves.index.get_indexer(groups)  # [n] item index into the halving
    assignment = halves.to_numpy()[item]  # [n, S]
    counts = group_counts(len(halves), n_boot, np.random.default_rng(seed))[:, item]  # [B, n]
    S = halves.shape[1]
    scores = np.full((S, 2, len(keys)), np.nan)
    boot = np.full((S, 2, len(keys), n_boot), np.nan)
    n_items = len(halves)
    for s in range(S):
        for h in (0, 1):
            rows = np.flatnonzero(assignment[:, s] == h)
            _, codes = np.unique(groups[rows], return_inverse=True)
            n_items = min(n_items, int(codes.max()) + 1)
            y_h = y[rows]
            folds = grouped_folds(codes, cv, inner_cv, y_h, task, seed + s)
            fold = np.empty(len(rows), dtype=np.int64)
            for k, (_, test, _) in enumerate(folds):
                fold[test] = k
            for width, members in by_width.items():
                if width == 1:  # a one-feature ridge ranks by sign(cov) * x: exact, no fit
                    unit = np.vstack([np.ones(len(rows)), counts[:, rows]])
                    for k in members:
                        x = np.asarray(features[keys[k]], dtype=np.float64)[rows, 0]
                        both = one_feature_refit_scores(y_h, x, fold, unit, task)
                        scores[s, h, k], boot[s, h, k] = both[0], both[1:]
                    continue
                for start in range(0, len(members), KEY_BATCH):
                    chunk = members[start : start + KEY_BATCH]
                    X = np.stack([np.asarray(features[keys[k]])[rows] for k in chunk])
                    oof, _ = cv_predictions(
                        X, y_h[:, None], folds, alphas, device=device, dtype=dtype
                    )
                    preds = oof[0][:, :, 0]  # [chunk, rows]
                    scores[s, h, chunk] = score_columns(y_h, preds.T, task, fold)
                    for k, pred in zip(chunk, preds, strict=True):
                        boot[s, h, k] = fold_scores(y_h, pred, fold, counts[:, rows], task)
    if n_layers is None:
        n_layers = int(np.nanmax([layer_of(split_key(k)[0]) for k in keys] + [0])) + 1
    depth = np.array([layer_of(split_key(k)[0]) for k in keys]) / max(n_layers - 1, 1)
    return HalfScores(
        keys=keys,
        depth=depth,
        scores=scores,
        boot=boot,
        n_items=n_items,
        metric=METRICS[task],
        halves_id=halves_id(halves),
        item_ids=list(halves.index),
        target=target,
    )


def cross_picked(cube: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each split and half (and replicate, when ``cube`` is [S, 2, K, B]), the score of the
    key picked (highest score) on the OTHER half: (estimates [S, 2(, B)], picked key index).
    An undefined score never wins; a pick undefined on the scoring half stays NaN."""
    cube = np.moveaxis(cube, 2, -1)  # keys last
    other = np.where(np.isfinite(cube), cube, -np.inf)[:, ::-1]
    pick = np.argmax(other, axis=-1)
    est = np.take_along_axis(cube, pick[..., None], axis=-1)[..., 0]
    return est, pick


def crossfit_ci(
    estimates: np.ndarray, replicates: np.ndarray, level: float = 0.95
) -> tuple[float, float, float, float]:
    """Mean of the half-estimates [S, 2] with a normal CI and two-sided p against 0:
    (mean, lo, hi, p). ``replicates`` [S, 2, B]: the same estimates under the bootstrap counts
    (picks redone). Variance = the bootstrap variance of the mean (item sampling) + the variance
    of the S halvings' means / S (which halving was drawn); see the module docstring."""
    est = np.asarray(estimates, dtype=float)
    mean = float(finite_mean(est))
    per_split = finite_mean(est, axis=1)
    per_split = per_split[np.isfinite(per_split)]
    theta = finite_mean(replicates.reshape(-1, replicates.shape[-1]), axis=0)
    theta = theta[np.isfinite(theta)]
    if len(theta) < 2 or not np.isfinite(mean):
        return mean, float("nan"), float("nan"), float("nan")
    split_var = per_split.var(ddof=1) / len(per_split) if len(per_split) > 1 else 0.0
    se = float(np.sqrt(theta.var(ddof=1) + split_var))
    if se == 0:
        return mean, mean, mean, float("nan") if mean == 0 else 0.0
    q = st.norm.ppf(0.5 + level / 2)
    return mean, mean - q * se, mean + q * se, float(2 * st.norm.sf(abs(mean) / se))


def finite_mean(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Mean over the finite entries (NaN where there is none), without numpy's warning."""
    ok = np.isfinite(values)
    count = ok.sum(axis)
    total = np.where(ok, values, 0.0).sum(axis)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def modal_key(keys: Sequence[str], pick: np.ndarray) -> tuple[str, float]:
    """The key picked most often over the halves, and the share of halves that picked it."""
    counts = np.bincount(pick.ravel(), minlength=len(keys))
    return str(keys[int(np.argmax(counts))]), float(counts.max() / pick.size)


def best_site(half: HalfScores, sweep: pd.DataFrame | None = None) -> dict:
    """Selection-adjusted best site of one model x target from its ``half_scores`` over every
    site x position (``baseline:*`` keys are the trivial baselines).

    Returns: site, position (the modal pick; ``picked`` = share of halves that picked it), score
    with score_lo / score_hi (mean of the cross-picked half-scores), baseline (the baselines'
    modal pick), baseline_score, and the paired site - baseline difference on the same halves and
    bootstrap draws: diff_baseline, diff_baseline_lo, diff_baseline_hi, p_baseline (two-sided);
    n_splits. Without baselines those are NaN. With the model's full-data ``sweep`` table (over
    the same sites and positions) also ``score_raw`` (that site's sweep score, unadjusted) and
    ``p_fwe`` (the smallest family-wise p of the sweep: the max-T test that some site x position
    decodes the target). Measured (``benchmarks/probe_stats.py``, 200 replications, 12 layers
    d = 40, equal signal 0.5, 150 items): score bias +0.003 (MC SE 0.003) against a fixed
    layer's half-sample score, coverage 0.980 (0.010); site - baseline coverage 0.945 (0.016).
    Wide regime (300 items, 24 layers d = 256, 24 replications): bias +0.006 (0.004), coverage
    1.000, site - baseline coverage 0.958 (0.041). Real runs' regime (300 items, 28 layers
    d = 1536, d > n, signal 0.3 on 8 features, 40 replications): bias -0.005 (0.004), coverage
    1.000 (40 of 40), site - baseline coverage 0.975 (0.025)."""
    is_base = np.array([k.startswith(BASELINE_PREFIX) for k in half.keys])
    if is_base.all():
        raise InputError("the half scores hold no site keys (only baselines)")
    real = half.select(~is_base)
    est, pick = cross_picked(real.scores)
    boot, _ = cross_picked(real.boot)
    key, share = modal_key(real.keys, pick)
    site, position = split_key(key)
    mean, lo, hi, _ = crossfit_ci(est, boot)
    out = dict(
        site=site,
        position=position,
        picked=share,
        score=mean,
        score_lo=lo,
        score_hi=hi,
        baseline="",
        baseline_score=float("nan"),
        diff_baseline=float("nan"),
        diff_baseline_lo=float("nan"),
        diff_baseline_hi=float("nan"),
        p_baseline=float("nan"),
        n_splits=est.shape[0],
    )
    if is_base.any():
        base = half.select(is_base)
        base_est, base_pick = cross_picked(base.scores)
        base_boot, _ = cross_picked(base.boot)
        name = split_key(modal_key(base.keys, base_pick)[0])[0]
        out["baseline"] = name.removeprefix(BASELINE_PREFIX)
        out["baseline_score"] = float(finite_mean(base_est))
        diff, dlo, dhi, p = crossfit_ci(est - base_est, boot - base_boot)
        out.update(diff_baseline=diff, diff_baseline_lo=dlo, diff_baseline_hi=dhi, p_baseline=p)
    if sweep is not None:
        sites = sweep[~sweep["site"].str.startswith(BASELINE_PREFIX)]
        at = sites[(sites["site"] == site) & (sites["position"] == position)]
        out["score_raw"] = float(at["score"].iloc[0]) if len(at) else float("nan")
        out["p_fwe"] = float(sites["p_fwe"].min())
    return out
