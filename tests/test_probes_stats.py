"""Probe statistics on planted data: the fold-wise score under H0, the permutation null's
honest names, the family-wise p over positions, cross-fitting refitted inside halves, the
selection-adjusted best site, Holm. Each test reproduces a defect of the earlier code."""

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
import torch
from sklearn.linear_model import RidgeCV
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from statsmodels.stats.multitest import multipletests

from probes import compare, sweep
from probes.checks import grouped_folds
from probes.controls import item_permutations, permuted_labels
from probes.crossfit import (
    best_site,
    cross_picked,
    crossfit_ci,
    half_scores,
    half_splits,
)
from probes.layer_sweep import DEFAULT_ALPHAS, cv_predictions, family_wise_p
from probes.metrics import fold_scores, group_counts, one_feature_refit_scores
from probes.multiplicity import adjust, holm_by
from probes.store_sweep import sweep_store

NO_EXTRAS = dict(n_boot=0, n_random_dims=0, device="cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _layers(n_layers, d, y, signal, rng):
    out = {}
    for layer in range(n_layers):
        X = rng.standard_normal((len(y), d))
        X[:, 0] += signal * y
        out[f"resid_post.{layer}|prompt_end"] = X
    return out


# ---- (5) the score: fold-wise, unbiased under H0 ---------------------------------------------
@pytest.mark.parametrize("n,reps", [(80, 60), (392, 30)])
def test_foldwise_score_has_mean_zero_under_h0_where_pooled_is_negative(n, reps):
    """No signal: the old pooled out-of-fold Spearman reads -0.125 (80 items) / -0.062 (392);
    the sweep's fold-wise score is centred on 0."""
    pooled, score = [], []
    for r in range(reps):
        rng = np.random.default_rng(r)
        y = rng.standard_normal(n)
        table, preds = sweep(
            {"resid_post.0|prompt_end": rng.standard_normal((n, 8))},
            y,
            np.arange(n),
            n_permutations=0,
            seed=r,
            return_predictions=True,
            **NO_EXTRAS,
        )
        pooled.append(st.spearmanr(preds["oof"], preds["y"])[0])
        score.append(table["score"].iloc[0])
    se = np.std(score, ddof=1) / np.sqrt(reps)
    assert abs(np.mean(score)) < 2.5 * se
    assert np.mean(pooled) < -3 * np.std(pooled, ddof=1) / np.sqrt(reps)  # the old score


def test_fold_scores_equal_scipy_and_sklearn_inside_each_fold():
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(40), 2)
    fold = (groups % 4)[:]  # items stay in one fold
    y = np.round(rng.normal(size=80), 1)  # ties
    pred = y + rng.normal(size=80)
    counts = group_counts(40, 4, rng)
    w = np.vstack([np.ones(80), counts[:, groups]])
    reg = fold_scores(y, pred, fold, w, "regression")
    cls = fold_scores((y > 0).astype(float), pred, fold, w, "classification")
    for b in range(len(w)):
        idx = np.concatenate([np.flatnonzero(w[b] > k) for k in range(int(w[b].max()))])
        f = fold[idx]
        rhos = [st.spearmanr(y[idx][f == k], pred[idx][f == k])[0] for k in range(4)]
        sizes = [(f == k).sum() for k in range(4)]
        assert reg[b] == pytest.approx(np.average(rhos, weights=sizes), abs=1e-12)
        pos = y[idx] > 0
        pairs = [(pos[f == k].sum() * (~pos[f == k]).sum()) for k in range(4)]
        aucs = [roc_auc_score(pos[f == k], pred[idx][f == k]) for k in range(4)]
        assert cls[b] == pytest.approx(np.average(aucs, weights=pairs), abs=1e-12)


# ---- (6) the permutation null, named for what it is ------------------------------------------
def test_null_mean_is_the_mean_of_the_permutation_null():
    rng = np.random.default_rng(4)
    y = rng.standard_normal(90)
    X = rng.standard_normal((90, 6))
    X[:, 0] += y
    table = sweep({"resid_post.0": X}, y, np.arange(90), n_permutations=29, seed=0, **NO_EXTRAS)
    assert "control_score" not in table and "selectivity" not in table
    perms = permuted_labels(y, np.arange(90), None, 29, np.random.default_rng(0))
    folds = grouped_folds(np.arange(90), 5, 5, y, "regression", 0)
    oof = cv_predictions(X, perms, folds, DEFAULT_ALPHAS, device="cpu")[0][0]
    fold = np.empty(90, dtype=int)
    for k, (_, test, _) in enumerate(folds):
        fold[test] = k
    null = [
        fold_scores(perms[:, j], oof[:, j], fold, np.ones((1, 90)), "regression")[0]
        for j in range(29)
    ]
    row = table.iloc[0]
    assert row["null_mean"] == pytest.approx(np.mean(null), abs=1e-12)
    assert row["score_minus_null"] == pytest.approx(row["score"] - np.mean(null), abs=1e-12)
    assert row["p_perm"] == pytest.approx((1 + (np.array(null) >= row["score"]).sum()) / 30)


# ---- (7) family-wise p over every position ---------------------------------------------------
class _MemoryStore:
    """What ``sweep_store`` reads from an ActivationStore, in memory."""

    def __init__(self, X, ids):
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

    def load(self, site, position):
        rows = self.index[(self.index.site == site) & (self.index.position == position)]
        return self._X[(site, position)], rows.reset_index(drop=True)


def test_family_wise_p_is_one_max_t_over_positions_and_can_go_below_05():
    """6 positions x 3 layers, a planted signal at one site: the best site's p_fwe reaches
    1/40 with 39 permutations. The old report multiplied a per-position p_fwe by the number of
    positions: 6/40 = 0.15 at best, never below .05."""
    rng = np.random.default_rng(0)
    n, ids = 60, [f"i{k:02d}" for k in range(60)]
    rt = np.exp(rng.standard_normal(n))
    X = {
        (f"resid_post.{layer}", f"step_{p}"): rng.standard_normal((n, 4))
        for layer in range(3)
        for p in range(6)
    }
    X[("resid_post.1", "step_3")][:, 0] += 2 * np.log(rt)
    items = pd.DataFrame(dict(item_id=ids, task="t", human_rt_s=rt))
    traces = pd.DataFrame(dict(model="m", item_id=ids, prompt_tokens=10))
    table, _ = sweep_store(
        _MemoryStore(X, ids),
        items,
        traces,
        "human_rt",
        n_permutations=39,
        seed=3,
        cv=3,
        **NO_EXTRAS,
    )
    real = table[~table.site.str.startswith("baseline:")]
    best = real.loc[real.score.idxmax()]
    assert (best.site, best.position) == ("resid_post.1", "step_3")
    assert best.p_fwe == pytest.approx(1 / 40)
    assert (real.p_fwe >= real.p_perm).all() and real.p_fwe.nunique() > 1
    # by hand: the same item permutations for every position, one maximum over all 18 keys
    donors = item_permutations(np.zeros(n, dtype=int), n, 39, np.random.default_rng(3))
    y = np.log(rt)
    nulls = []
    for p in range(6):
        feats = {
            f"resid_post.{layer}|step_{p}": X[(f"resid_post.{layer}", f"step_{p}")]
            for layer in range(3)
        }
        _, null = sweep(
            feats,
            y,
            np.array(ids),
            null_labels=y[donors].T,
            seed=3,
            cv=3,
            return_nulls=True,
            **NO_EXTRAS,
        )
        nulls.append(null.to_numpy())
    np.testing.assert_allclose(real.p_fwe, family_wise_p(real.score, np.vstack(nulls)))


# ---- (1) cross-fitting refitted inside each half ---------------------------------------------
def test_half_scores_refit_inside_each_half_like_sklearn():
    """Each half's score is a grouped, nested CV on that half's items only: RidgeCV inside
    GroupKFold folds of the half (seeded seed + split), scored fold by fold with scipy."""
    rng = np.random.default_rng(1)
    n = 80
    y = rng.standard_normal(n)
    ids = np.array([f"i{k:02d}" for k in range(n)])
    feats = _layers(1, 6, y, 0.8, rng)
    halves = half_splits(ids, 2, seed=5)
    assert (halves.sum(0) == n // 2).all()  # halves of equal size
    hs = half_scores(feats, y, ids, halves, cv=4, inner_cv=3, seed=7, device="cpu")
    for s in range(2):
        for h in (0, 1):
            rows = np.flatnonzero(halves.loc[ids, s].to_numpy() == h)
            codes = np.unique(ids[rows], return_inverse=True)[1]
            outer = GroupKFold(4, shuffle=True, random_state=7 + s)
            for k, key in enumerate(hs.keys):
                X, yy = feats[key][rows], y[rows]
                rhos, sizes = [], []
                for train, test in outer.split(X, groups=codes):
                    inner = GroupKFold(3, shuffle=True, random_state=7 + s)
                    splits = list(inner.split(X[train], groups=codes[train]))
                    model = make_pipeline(
                        StandardScaler(), RidgeCV(alphas=DEFAULT_ALPHAS, cv=splits)
                    ).fit(X[train], yy[train])
                    rhos.append(st.spearmanr(model.predict(X[test]), yy[test])[0])
                    sizes.append(len(test))
                assert hs.scores[s, h, k] == pytest.approx(
                    np.average(rhos, weights=sizes), abs=1e-6
                )


def test_cross_pick_and_ci_by_hand():
    cube = np.array([[[0.1, 0.5, np.nan], [0.3, 0.2, 0.9]], [[0.4, 0.0, 0.2], [0.2, 0.6, 0.1]]])
    est, pick = cross_picked(cube)
    # split 0: half 0 scored at the key best on half 1 (key 2, undefined on half 0 -> NaN);
    # half 1 at the key best on half 0 (key 1; the NaN never wins). split 1: keys 1 and 0.
    np.testing.assert_array_equal(pick, [[2, 1], [1, 0]])
    np.testing.assert_allclose(est, [[np.nan, 0.2], [0.0, 0.2]])
    # deletions = the half's estimate + an item effect every halving shares + each halving's own
    # noise: the CI's item term is the jackknife variance of the shared effects alone, and the
    # halving term var(per-split means) / S
    rng = np.random.default_rng(0)
    S, N = 6, 50
    effect = rng.normal(0, 0.01, N)
    want = (N - 1) / N * ((effect - effect.mean()) ** 2).sum()
    got, naive = [], []
    for _ in range(400):
        est = rng.normal(0.3, 0.1, (S, 2))
        deleted = est[..., None] + effect + rng.normal(0, 0.03, (S, 2, N))
        mean, lo, hi, p = crossfit_ci(est, deleted)
        # by hand, item by item: T without item j, per halving and over all of them
        per_split = np.array([[deleted[s, :, j].mean() for j in range(N)] for s in range(S)])
        t_minus = per_split.mean(0)
        plain = (N - 1) / N * sum((t - t_minus.mean()) ** 2 for t in t_minus)
        # item j's effect in halving s is measured from that halving's mean deletion
        effect_sj = per_split - per_split.mean(1, keepdims=True)
        spread = sum(np.var(effect_sj[:, j], ddof=1) for j in range(N)) / S
        items = plain - (N - 1) / N * spread
        splits = np.var(est.mean(1), ddof=1) / S
        kept = max(items, 0.0)  # a negative estimate of a variance counts as 0
        se = np.sqrt(kept + splits)
        df = se**4 / (kept**2 / (N - 1) + splits**2 / (S - 1))
        half = st.t.ppf(0.975, df) * se
        assert (mean, lo, hi) == pytest.approx((est.mean(), mean - half, mean + half))
        assert p == pytest.approx(2 * st.t.sf(mean / se, df))
        got.append(items)
        naive.append(plain)
    assert np.mean(got) == pytest.approx(want, rel=0.03)  # unbiased for the shared part
    assert np.mean(naive) > 1.5 * want  # the plain jackknife counts each halving's noise too
    assert np.isnan(crossfit_ci(est[:1], deleted[:1])[1])  # one halving: no CI
    # no item effects at all: only the halvings' term, on S - 1 degrees of freedom
    mean, lo, hi, _ = crossfit_ci(est, np.broadcast_to(est[..., None], (S, 2, N)))
    half = st.t.ppf(0.975, S - 1) * np.sqrt(est.mean(1).var(ddof=1) / S)
    assert (lo, hi) == pytest.approx((mean - half, mean + half))


def test_best_site_and_baseline_difference_are_paired_on_the_same_halves():
    rng = np.random.default_rng(2)
    n = 120
    y = rng.standard_normal(n)
    ids = np.array([f"i{k:03d}" for k in range(n)])
    feats = _layers(3, 5, y, 0.3, rng)
    feats["resid_post.1|prompt_end"][:, 0] += 1.5 * y  # the best layer
    feats["baseline:feat|prompt_end"] = (y + rng.standard_normal(n))[:, None]
    hs = half_scores(feats, y, ids, half_splits(ids, 5, 0), device="cpu")
    out = best_site(hs)
    assert (out["site"], out["position"], out["picked"]) == ("resid_post.1", "prompt_end", 1.0)
    assert out["baseline"] == "feat" and out["n_splits"] == 5
    site, base = hs.scores[:, :, 1], hs.scores[:, :, 3]  # every half picked layer 1
    diff = crossfit_ci(site - base, hs.deleted[:, :, 1] - hs.deleted[:, :, 3])
    assert (
        out["diff_baseline"],
        out["diff_baseline_lo"],
        out["diff_baseline_hi"],
    ) == pytest.approx(diff[:3])
    assert out["score"] == pytest.approx(site.mean()) and out["diff_baseline_lo"] > 0


def test_one_feature_bootstrap_refits_like_sklearn_on_explicit_resamples():
    """A weak one-feature baseline's refits flip its sign in some folds; the bootstrap refits it
    exactly: each draw equals a scikit-learn ridge refitted on the resampled training folds."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(6)
    n = 60
    y = rng.standard_normal(n)
    x = 0.1 * y + rng.standard_normal(n)
    fold = np.arange(n) % 5
    counts = np.vstack([np.ones(n), group_counts(n, 30, rng)])
    got = one_feature_refit_scores(y, x, fold, counts, "regression")
    flipped = 0
    for b in range(len(counts)):
        idx = np.repeat(np.arange(n), counts[b].astype(int))
        rhos, sizes = [], []
        for k in range(5):
            train, test = idx[fold[idx] != k], idx[fold[idx] == k]
            model = make_pipeline(StandardScaler(), Ridge(alpha=10.0)).fit(x[train, None], y[train])
            flipped += model[-1].coef_[0] < 0
            rhos.append(st.spearmanr(model.predict(x[test, None]), y[test])[0])
            sizes.append(len(test))
        assert got[b] == pytest.approx(np.average(rhos, weights=sizes), abs=1e-12)
    assert flipped > 0  # the case the fixed-prediction bootstrap cannot see


def test_one_feature_half_scores_equal_the_ridge_they_skip():
    """A weak one-feature baseline: half_scores scores it without fitting; the nested-CV ridge
    on the same half folds gives the same fold-wise score, sign flips included."""
    rng = np.random.default_rng(8)
    n = 120
    y = rng.standard_normal(n)
    ids = np.array([f"i{k:03d}" for k in range(n)])
    x = (0.15 * y + rng.standard_normal(n))[:, None]
    halves = half_splits(ids, 6, seed=2)
    hs = half_scores({"baseline:x|p": x}, y, ids, halves, seed=4, device="cpu")
    for s in range(6):
        for h in (0, 1):
            rows = np.flatnonzero(halves.loc[ids, s].to_numpy() == h)
            folds = grouped_folds(np.arange(len(rows)), 5, 5, y[rows], "regression", 4 + s)
            fold = np.empty(len(rows), dtype=int)
            for k, (_, test, _) in enumerate(folds):
                fold[test] = k
            oof = cv_predictions(x[rows], y[rows, None], folds, DEFAULT_ALPHAS, device="cpu")
            ridge = fold_scores(
                y[rows], oof[0][0][:, 0], fold, np.ones((1, len(rows))), "regression"
            )
            assert hs.scores[s, h, 0] == pytest.approx(ridge[0], abs=1e-12)


@pytest.mark.slow
def test_best_layer_contrast_and_best_site_are_unbiased_with_more_layers():
    """Equal signal 0.5 at every layer, 12 layers (d = 40) vs 2 (d = 40), 150 items. Truth of
    both estimands per replication: the mean half-sample score of a fixed layer (any layer:
    they are exchangeable). The raw maximum of a full-data sweep beats it (winner's curse);
    compare's best-layer difference and best_site's score do not (bias within 2.5 MC SE)."""
    diff, site, raw = [], [], []
    for r in range(24):
        rng = np.random.default_rng(100 + r)
        y = rng.standard_normal(150)
        ids = np.array([f"i{k:03d}" for k in range(150)])
        fa, fb = _layers(12, 40, y, 0.5, rng), _layers(2, 40, y, 0.5, rng)
        halves = half_splits(ids, 10, seed=r)
        kw = dict(seed=r, dtype="float32", device="cpu")
        ha, hb = half_scores(fa, y, ids, halves, **kw), half_scores(fb, y, ids, halves, **kw)
        truth_a, truth_b = ha.scores.mean(), hb.scores.mean()
        diff.append(compare(ha, hb)["diff"].iloc[0] - (truth_a - truth_b))
        site.append(best_site(ha)["score"] - truth_a)
        table = sweep(fa, y, ids, n_permutations=0, seed=r, dtype="float32", **NO_EXTRAS)
        raw.append(table["score"].max() - truth_a)
    for errors in (diff, site):
        assert abs(np.mean(errors)) < 2.5 * np.std(errors, ddof=1) / np.sqrt(len(errors))
    assert np.mean(raw) > 0.1  # the raw best of 12 layers, even at twice the training items


# ---- (11) Holm / BH across a family -----------------------------------------------------------
def test_adjustments_match_statsmodels_keep_nans_and_stay_within_families():
    p = np.array([0.01, np.nan, 0.04, 0.03, 0.2])
    got = adjust(p)
    want = multipletests(p[[0, 2, 3, 4]], method="holm")[1]
    np.testing.assert_allclose(got[[0, 2, 3, 4]], want)
    assert np.isnan(got[1]) and got[0] == pytest.approx(0.04)  # 4 tests: 4 x 0.01
    # ten permutation p-values at the floor 1/101: Holm cannot reach .05, BH keeps them
    floor = np.full(10, 1 / 101)
    assert adjust(floor).min() > 0.05 and adjust(floor, "fdr_bh").max() == pytest.approx(1 / 101)
    table = pd.DataFrame(
        dict(endpoint=["primary", "secondary", "primary", "secondary"], p=[0.01, 0.01, 0.02, 0.5]),
        index=[7, 3, 5, 1],
    )
    np.testing.assert_allclose(holm_by(table, "endpoint"), [0.02, 0.02, 0.02, 0.5])
