"""Targets from the tables, steering directions, probe transfer and model contrasts."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
import torch

from probes import LinearProbe, compare, transfer
from probes.crossfit import half_scores, half_splits
from probes.directions import fit_direction, load_direction, save_direction
from probes.targets import build_target


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tables():
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d", "e"],
            "task": "arith",
            "human_rt_s": [1.0, 2.0, np.nan, 4.0, 8.0],
            "feat_carries": [0, 1, 1, 2, 3],
        }
    )
    traces = pd.DataFrame(
        {
            "model": ["m"] * 8 + ["other"],
            "item_id": ["a", "a", "b", "b", "c", "d", "d", "e", "a"],
            "reasoning_tokens": [10, 30, 99, 101, 5, 200, 0, 50, 7],
            "prompt_tokens": [20, 20, 30, 30, 25, 40, 40, 50, 20],
            "correct": [True, False, True, True, False, True, True, False, True],
        }
    )
    return items, traces


def test_base_targets_by_hand():
    items, traces = _tables()
    rt = build_target("human_rt", items, traces, model="m")
    assert list(rt.index) == ["a", "b", "d", "e"]  # c has no RT: dropped
    np.testing.assert_allclose(rt.to_numpy(), np.log([1, 2, 4, 8]))
    own = build_target("reasoning_tokens", items, traces, model="m")
    np.testing.assert_allclose(own.loc[["a", "b", "c", "d", "e"]], np.log1p([20, 100, 5, 100, 50]))
    acc = build_target("correct", items, traces, model="m")
    np.testing.assert_allclose(acc.loc[["a", "b", "c", "d", "e"]], [0.5, 1, 0, 1, 0])
    feat = build_target("feat_carries", items, traces, model="m")
    assert feat.name == "feat_carries" and feat.loc["e"] == 3


def test_residualised_target_is_ols_residual():
    items, traces = _tables()
    res = build_target("reasoning_tokens|human_rt", items, traces, model="m")
    x = np.log([1, 2, 4, 8])
    yv = np.log1p([20, 100, 100, 50])
    fit = st.linregress(x, yv)
    np.testing.assert_allclose(
        res.loc[["a", "b", "d", "e"]], yv - fit.intercept - fit.slope * x, atol=1e-12
    )
    assert abs(np.corrcoef(res.to_numpy(), x)[0, 1]) < 1e-10


@pytest.mark.parametrize("name,match", [("speed", "unknown target"), ("feat_nope", "feat_carries")])
def test_bad_target_names(name, match):
    items, traces = _tables()
    with pytest.raises(ValueError, match=match):
        build_target(name, items, traces, model="m")
    with pytest.raises(ValueError, match="no rows for model"):
        build_target("reasoning_tokens", items, traces, model="ghost")


@pytest.mark.parametrize("method", ["diff_means", "probe"])
def test_direction_recovers_planted_axis(method, tmp_path):
    rng = np.random.default_rng(0)
    axis = rng.normal(size=32)
    axis /= np.linalg.norm(axis)
    y = rng.normal(size=400)
    scales = rng.uniform(0.5, 3, size=32)  # anisotropic: standardisation must be undone
    X = rng.normal(size=(400, 32)) * 0.3 * scales + 5 + np.outer(y, axis)
    v = fit_direction(X, y, method=method)
    assert np.linalg.norm(v) == pytest.approx(1.0)
    # diff of means recovers the pattern (the axis); the probe weight is the filter
    # Sigma_noise^-1 axis (Haufe et al. 2014) — both only if standardisation is undone.
    expected = axis if method == "diff_means" else axis / (0.3 * scales) ** 2
    assert v @ expected / np.linalg.norm(expected) > 0.95
    path = save_direction(
        tmp_path / "d.safetensors",
        v,
        {"model": "m", "site": "resid_post.3", "method": method, "n": 400, "score": 0.8},
    )
    loaded, meta = load_direction(path)
    np.testing.assert_array_equal(loaded, v)
    assert meta == {"model": "m", "site": "resid_post.3", "method": method, "n": 400, "score": 0.8}


def test_diff_means_with_tied_quantiles_splits_at_the_tied_value():
    """Most traces at the budget (12): the quartiles tie, so the split is below vs at 12."""
    y = np.array([3.0, 7.0, 12, 12, 12, 12, 12, 12])
    X = np.eye(8)
    v = fit_direction(X, y)
    expected = np.r_[-0.5, -0.5, np.full(6, 1 / 6)]  # mean(at 12) - mean(below 12)
    np.testing.assert_allclose(v, expected / np.linalg.norm(expected))
    w = fit_direction(X, -y)  # the tie now at the bottom: above vs at it
    np.testing.assert_allclose(w, -v)


def test_direction_bad_input():
    with pytest.raises(ValueError, match="one value"):
        fit_direction(np.ones((10, 3)), np.zeros(10))
    with pytest.raises(ValueError, match="method"):
        fit_direction(np.ones((10, 3)), np.arange(10.0), method="pca")


def test_transfer_scores_probe_on_other_model():
    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    w = rng.normal(size=20)
    X_a = np.outer(y, w) + rng.normal(size=(300, 20))
    X_b = np.outer(y, w) + rng.normal(size=(300, 20))  # same readout
    X_c = np.outer(y, rng.normal(size=20)) + rng.normal(size=(300, 20))  # rotated code
    probe = LinearProbe(alpha=1.0).fit(X_a[:150], y[:150])
    same = transfer(probe, X_b[150:], y[150:])
    assert same == pytest.approx(st.spearmanr(probe.predict(X_b[150:]), y[150:])[0])
    assert same > 0.8 and abs(transfer(probe, X_c[150:], y[150:])) < same - 0.3
    with pytest.raises(ValueError, match="same d_model"):
        transfer(probe, X_b[:, :10], y)


def test_compare_teacher_vs_student_at_preregistered_depths():
    """Teacher encodes y at every layer, student only in its first half: the contrast is ~0 at
    depth 0.25 and clearly positive at 0.75, with CIs that say so; the best layers tie."""
    rng = np.random.default_rng(3)
    n = 160
    y = rng.normal(size=n)
    groups = np.array([f"item{i}" for i in range(n)])
    halves = half_splits(groups, 6, seed=0)

    def model(n_layers, encodes):
        feats = {}
        for layer in range(n_layers):
            X = rng.normal(size=(n, 8))
            if encodes(layer / (n_layers - 1)):
                X[:, 0] += 1.5 * y
            feats[f"resid_post.{layer}|prompt_end"] = X
        return half_scores(feats, y, groups, halves, cv=4, inner_cv=3, device="cpu")

    teacher = model(6, lambda depth: True)
    student = model(4, lambda depth: depth < 0.5)
    out = compare(teacher, student, depths=(0.25, 0.75))
    best = out[out["comparison"] == "best_layer"].iloc[0]
    assert abs(best["diff"]) < 0.1 and best["diff_lo"] < 0 < best["diff_hi"]
    assert best["endpoint"] == "primary" and best["n_splits"] == 6 and best["n_items"] == n // 2
    early, late = out[out["comparison"] == "depth"].sort_values("depth").itertuples()
    assert (early.site_a, early.site_b) == ("resid_post.1", "resid_post.1")  # 0.2 and 0.33
    assert early.diff_lo < 0 < early.diff_hi and early.endpoint == "secondary"
    assert (late.site_a, late.site_b) == ("resid_post.4", "resid_post.2")  # 0.8 and 0.67
    assert late.diff > 0.5 and late.diff_lo > 0.3 and late.p < 0.001
    with pytest.raises(ValueError, match="different targets"):
        compare(replace(teacher, target="human_rt"), replace(student, target="reasoning_tokens"))
    other = half_scores(
        {"resid_post.0|prompt_end": rng.normal(size=(n, 8))},
        y,
        groups,
        half_splits(groups, 6, seed=1),
        cv=4,
        inner_cv=3,
        device="cpu",
    )
    with pytest.raises(ValueError, match="different halves"):
        compare(teacher, other)
