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

Inference (``crossfit_ci``): the estimate T is the mean of 2S half-estimates. Over data sets
and halvings, var(T) = var(E[T | data]) + E[var(T | data)]: which items were sampled, and which
halvings were drawn. The second is estimated without bias by the variance of the S halvings'
means / S. The first by a delete-one-item jackknife in which every deletion refits the probes
(``probes.jackknife``: closed form, exact for a ridge at the fold's alpha and scale), each pick held
at the one the full data made, paired across models (the same items deleted): each item's
effect on T, less its spread over the halvings / S — an unbiased estimate (before truncation at
0, which makes it conservative) of the jackknife that infinitely many halvings would give. A t CI and p from the sum, with Welch-Satterthwaite
degrees of freedom (N - 1 for the items' term, S - 1 for the halvings'): at d > n the halvings'
term is most of the variance and, from 10 halvings, noisy, so a normal quantile over-rejects
(150 items, 12 layers d = 600 both, truth 0, the same 160 replications: size 0.075 with a normal
quantile, 0.056 with the t). Why not the plain jackknife
(or a bootstrap) of T: each halving's own noise — which items train and which test — is an
interaction between items, which a delete-one jackknife counts about twice (the Efron-Stein
bias), so adding the halvings' term would count it three times; with the picks redone per
deletion the jackknife is not smooth (its SE read 3.4x the estimate's SD, 20 replications).

History: until this estimator the item term was a bootstrap with the fitted predictions held
fixed (only the test side of each item: coverage 0.905-0.910 alone), plus the halvings' term. It
covered at 150 items, d = 40 (0.940), but at d > n (300 items, 28 x 1,536) its SE was 1.49x the
estimate's SD (size 0 of 100): the fixed-fit bootstrap's within-halving variance (0.00168)
counted the halvings' noise (0.00134) a second time, as the argument above predicts.

Measured (``benchmarks/probe_stats.py`` with ``--dump``, then ``benchmarks/contrast_variance.py``
on the same replications; equal signal at every layer, 10 halvings). 150 items, 12 layers d = 40
vs 2 layers d = 40, truth 0, 600 replications: the estimate's variance 0.0077; parts: halvings
0.0024, each halving's own jackknife variance 0.0055 (2.3x the halvings' term: the double count),
shared item effects 0.0059. CI coverage 0.960 (MC SE 0.008), size 0.040 (0.008), half-width /
1.96 0.093 vs the SD 0.088; normal-quantile CIs from the plain jackknife 0.988 / 0.012, plus the
halvings 0.997 / 0.003, the halvings alone 0.693 / 0.303. Best site of the 12-layer model:
coverage 0.947 (0.009); site - baseline 0.948 (0.009). At d > n (300 items, 28 x 1,536 both,
truth 0, 100 replications): variance 0.00149; halvings 0.00134, each halving's own jackknife
variance 0.00310, shared item effects 0.00063 (more than the 0.00015 left for them; our
reading: the jackknife still over-counts the items' higher-order interactions there); size
0.040 (0.020), coverage
0.960, half-width / 1.96 0.048 vs SD 0.0385 (1.24x: conservative, where the fixed-fit
bootstrap's 0.0575 was 1.49x). 150 items, 12 layers d = 600 both (160 replications): size 0.056
(0.018), coverage 0.944, half-width / 1.96 0.072 vs SD 0.068.
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
from probes.jackknife import cv_jackknife, one_feature_jackknife
from probes.layer_sweep import DEFAULT_ALPHAS, layer_of, split_key
from probes.metrics import METRICS

BASELINE_PREFIX = "baseline:"
#: halvings per estimate: the estimate's variance is sigma^2 (rho + (1 - rho) / 2S) for
#: half-estimates of variance sigma^2 and correlation rho, so past ten the gain is small
N_SPLITS = 10
#: the CI method, part of the pipeline probes stage's cache key: a run folder made with another
#: method (the fixed-fit bootstrap before it) is recomputed, not reported under this one's name
CI_METHOD = "jackknife-shared+halvings/t-welch"
#: keys fitted together in one batch (bounds the memory of [K, n, d] float64 stacks)
KEY_BATCH = 16


def half_splits(
    item_ids: Sequence[str], n_splits: int, seed: int, strata: Sequence[str] | None = None
) -> pd.DataFrame:
    """``n_splits`` random halvings of the items, stratified by ``strata`` (e.g. the task): a
    0/1 DataFrame [items, splits] indexed by item id (str). The same item set and seed give the
    same halves, so two models probed on the same items are split alike (paired contrasts)."""
    if n_splits < 2:
        raise InputError(
            f"n_splits={n_splits}; cross-fitting needs at least two halvings (the CI's halving "
            "term is their variance)"
        )
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
    """Every key's fold-wise CV score inside each half of each halving, and its jackknife.

    ``keys`` [K] ("site|position", ``baseline:*`` included), ``depth`` [K], ``scores`` [S, 2, K],
    ``deleted`` [S, 2, K, N] (the same half-scores with each of the halving's N items deleted
    and the probes refitted without it, ``probes.jackknife``; equal to ``scores`` where the item
    is in the other half: two models on the same halves delete the same items — paired),
    ``n_items`` (fewest items in a
    half), ``metric``, ``halves_id``, ``item_ids`` (the halving's items), ``target`` ("" when
    unknown)."""

    keys: list[str]
    depth: np.ndarray
    scores: np.ndarray
    deleted: np.ndarray
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
            deleted=self.deleted[:, :, keep],
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
            deleted=np.concatenate([self.deleted, other.deleted], axis=2),
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
    seed: int = 0,
    target: str = "",
    device: str | torch.device | None = None,
    dtype: str = "float64",
) -> HalfScores:
    """Fold-wise CV score of every key inside each half of each halving, with its jackknife.

    ``features`` {"site|position": X [n, d]} (``baseline:*`` keys allowed) on rows aligned with
    ``y`` [n] and ``groups`` [n] (item ids, in ``halves``' index); ``halves`` from
    ``half_splits``. Each half runs ``sweep``'s protocol on its own items: grouped outer
    ``cv``-fold CV (folds seeded by ``seed`` + split), alpha by inner CV, scored fold-wise. Keys
    of one width are fitted as one batch; a one-feature key (a trivial baseline) needs no fit, as
    its ridge ranks each test fold by sign(training covariance) * x, whatever alpha
    (``probes.metrics.one_feature_refit_scores``; equal to the ridge, tested). Every score is
    also computed with each item of its half deleted, refitted in closed form
    (``probes.jackknife``); ``dtype`` "float32" is used only where the folds train on more
    rows than features."""
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
    S = halves.shape[1]
    scores = np.full((S, 2, len(keys)), np.nan)
    # float32: S x 2 x K x N is the largest array of a run (heads x 40 halvings x 800 items)
    deleted = np.full((S, 2, len(keys), len(halves)), np.nan, dtype=np.float32)
    n_items = len(halves)
    for s in range(S):
        for h in (0, 1):
            rows = np.flatnonzero(assignment[:, s] == h)
            members, codes = np.unique(item[rows], return_inverse=True)
            n_items = min(n_items, len(members))
            y_h = y[rows]
            folds = grouped_folds(codes, cv, inner_cv, y_h, task, seed + s)
            fold = np.empty(len(rows), dtype=np.int64)
            for k, (_, test, _) in enumerate(folds):
                fold[test] = k
            for width, key_ids in by_width.items():
                if width == 1:  # a one-feature ridge ranks by sign(cov) * x: exact, no fit
                    for k in key_ids:
                        x = np.asarray(features[keys[k]], dtype=np.float64)[rows, 0]
                        score, dropped = one_feature_jackknife(y_h, x, fold, codes, task)
                        scores[s, h, k] = score
                        deleted[s, h, k] = score
                        deleted[s, h, k, members] = dropped
                    continue
                for start in range(0, len(key_ids), KEY_BATCH):
                    chunk = key_ids[start : start + KEY_BATCH]
                    X = np.stack([np.asarray(features[keys[k]])[rows] for k in chunk])
                    score, dropped = cv_jackknife(
                        X, y_h, folds, alphas, codes, task, device=device, dtype=dtype
                    )
                    scores[s, h, chunk] = score
                    deleted[s, h, chunk] = score[:, None]
                    deleted[s, h, np.asarray(chunk)[:, None], members[None, :]] = dropped
    if n_layers is None:
        n_layers = int(np.nanmax([layer_of(split_key(k)[0]) for k in keys] + [0])) + 1
    depth = np.array([layer_of(split_key(k)[0]) for k in keys]) / max(n_layers - 1, 1)
    return HalfScores(
        keys=keys,
        depth=depth,
        scores=scores,
        deleted=deleted,
        n_items=n_items,
        metric=METRICS[task],
        halves_id=halves_id(halves),
        item_ids=list(halves.index),
        target=target,
    )


def cross_picked(cube: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each split and half, the score of the key picked (highest score) on the OTHER half:
    (estimates [S, 2], picked key index [S, 2]). An undefined score never wins; a pick
    undefined on the scoring half stays NaN."""
    cube = np.moveaxis(cube, 2, -1)  # keys last
    other = np.where(np.isfinite(cube), cube, -np.inf)[:, ::-1]
    pick = np.argmax(other, axis=-1)
    est = np.take_along_axis(cube, pick[..., None], axis=-1)[..., 0]
    return est, pick


def held(deleted: np.ndarray, pick: np.ndarray) -> np.ndarray:
    """The picked keys' deletion scores [S, 2, N]: ``deleted`` [S, 2, K, N] at ``pick`` [S, 2]
    (each half's pick held at the one the full data made)."""
    return np.take_along_axis(deleted, pick[:, :, None, None], axis=2)[:, :, 0]


def crossfit_ci(
    estimates: np.ndarray, deleted: np.ndarray, level: float = 0.95
) -> tuple[float, float, float, float]:
    """Mean of the half-estimates [S, 2] with a t CI and two-sided p against 0:
    (mean, lo, hi, p). ``deleted`` [S, 2, N]: the same estimates with each of the N items
    deleted. Variance = the jackknife variance of the item effects the halvings share (each
    halving's own jackknife variance removed) + the variance of the S halvings' means / S, with
    their Welch-Satterthwaite degrees of freedom (N - 1 and S - 1); see the module docstring.
    Needs two halvings or more (NaN CI otherwise)."""
    est = np.asarray(estimates, dtype=float)
    mean = float(finite_mean(est))
    per_split = finite_mean(est, axis=1)
    per_item = finite_mean(np.asarray(deleted, dtype=float), axis=1)  # [S, N]
    ok = np.isfinite(per_split) & np.isfinite(per_item).all(axis=1)
    S, N = int(ok.sum()), per_item.shape[1]
    if S < 2 or N < 2 or not np.isfinite(mean):
        return mean, float("nan"), float("nan"), float("nan")
    effect = per_item[ok] - per_item[ok].mean(axis=1, keepdims=True)  # [S, N]
    # the jackknife of the mean over halvings, less each item's spread over halvings / S: an
    # unbiased estimate (before truncation at 0) of the jackknife that infinitely many halvings
    # would give
    items = max((N - 1) / N * (effect.mean(0) ** 2 - effect.var(0, ddof=1) / S).sum(), 0.0)
    splits = per_split[ok].var(ddof=1) / S
    se = float(np.sqrt(items + splits))
    if se == 0:
        return mean, mean, mean, float("nan") if mean == 0 else 0.0
    # Welch-Satterthwaite degrees of freedom: the halvings' term has only S - 1
    df = se**4 / (items**2 / (N - 1) + splits**2 / (S - 1))
    q = st.t.ppf(0.5 + level / 2, df)
    return mean, mean - q * se, mean + q * se, float(2 * st.t.sf(abs(mean) / se, df))


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
    deletions: diff_baseline, diff_baseline_lo, diff_baseline_hi, p_baseline (two-sided);
    n_splits. Without baselines those are NaN. With the model's full-data ``sweep`` table (over
    the same sites and positions) also ``score_raw`` (that site's sweep score, unadjusted) and
    ``p_fwe`` (the smallest family-wise p of the sweep: the max-T test that some site x position
    decodes the target). Measured (``benchmarks/probe_stats.py``, 600 replications, 12 layers
    d = 40, equal signal 0.5, 150 items): score bias +0.001 (MC SE 0.002) against a fixed
    layer's half-sample score, coverage 0.947 (0.009); site - baseline coverage 0.948 (0.009).
    Wide regime (300 items, 24 layers d = 256, 24 replications, normal quantile): bias +0.006
    (0.004), coverage 1.000, site - baseline coverage 0.958 (0.041). Real runs' regime (300
    items, 28 layers d = 1536, d > n, signal 0.3 on 8 features, 100 replications): bias -0.0011
    (0.0028), coverage 0.960 (0.020), site - baseline coverage 0.970 (0.017)."""
    is_base = np.array([k.startswith(BASELINE_PREFIX) for k in half.keys])
    if is_base.all():
        raise InputError("the half scores hold no site keys (only baselines)")
    real = half.select(~is_base)
    est, pick = cross_picked(real.scores)
    dropped = held(real.deleted, pick)
    key, share = modal_key(real.keys, pick)
    site, position = split_key(key)
    mean, lo, hi, _ = crossfit_ci(est, dropped)
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
        base_dropped = held(base.deleted, base_pick)
        name = split_key(modal_key(base.keys, base_pick)[0])[0]
        out["baseline"] = name.removeprefix(BASELINE_PREFIX)
        out["baseline_score"] = float(finite_mean(base_est))
        diff, dlo, dhi, p = crossfit_ci(est - base_est, dropped - base_dropped)
        out.update(diff_baseline=diff, diff_baseline_lo=dlo, diff_baseline_hi=dhi, p_baseline=p)
    if sweep is not None:
        sites = sweep[~sweep["site"].str.startswith(BASELINE_PREFIX)]
        at = sites[(sites["site"] == site) & (sites["position"] == position)]
        out["score_raw"] = float(at["score"].iloc[0]) if len(at) else float("nan")
        out["p_fwe"] = float(sites["p_fwe"].min())
    return out
