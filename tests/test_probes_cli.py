"""`handan probe` / `handan probe-compare` on a tiny activation store with a planted signal."""

import numpy as np
import pandas as pd
import pytest
import torch
import typer
from typer.testing import CliRunner

from experiments.cli.probe import register
from hooks.store import ActivationStore

N_ITEMS, SAMPLES, D, LAYERS = 60, 2, 12, 3


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add contention on the shared box
    yield
    torch.set_num_threads(threads)


def _app():
    app = typer.Typer()
    register(app)
    return app


def _write(tmp_path, model, signal_layer):
    rng = np.random.default_rng(0)  # the same items (and human RTs) for every model
    ids = [f"i{k}" for k in range(N_ITEMS)]
    rt = np.exp(rng.normal(size=N_ITEMS))
    items = pd.DataFrame(
        {
            "item_id": ids,
            "task": ["add", "mul"] * (N_ITEMS // 2),
            "prompt": "q",
            "answer": "1",
            "human_rt_s": rt,
            "feat_digits": rng.integers(1, 5, N_ITEMS),
        }
    )
    rows, vectors = [], {f"resid_post.{layer}": [] for layer in range(LAYERS)}
    for k, item in enumerate(ids):
        for sample in range(SAMPLES):
            for layer in range(LAYERS):
                site = f"resid_post.{layer}"
                rows.append(
                    {
                        "model": model,
                        "item_id": item,
                        "sample": sample,
                        "site": site,
                        "position": "prompt_end",
                        "token_index": 5,
                    }
                )
                x = np.random.default_rng(k * 10 + layer).normal(size=D)  # same for both samples
                if layer == signal_layer:
                    x[0] += 2 * np.log(rt[k])
                vectors[site].append(x)
    store = ActivationStore.create_or_open(
        tmp_path / f"store_{model}",
        {
            "model": model,
            "config_hash": "x",
            "sites": list(vectors),
            "positions": ["prompt_end"],
            "dtype": "float32",
            "d_model": D,
        },
    )
    store.append(pd.DataFrame(rows), {s: np.array(v, dtype=np.float32) for s, v in vectors.items()})
    traces = pd.DataFrame(
        [
            {
                "model": model,
                "item_id": item,
                "task": "add",
                "sample": s,
                "prompt_tokens": 10 + k % 7,
                "reasoning_tokens": 50 + k,
                "answer_tokens": 3,
                "finished_thinking": True,
                "response": "1",
                "correct": True,
                "text": "t",
            }
            for k, item in enumerate(ids)
            for s in range(SAMPLES)
        ]
    )
    items.to_csv(tmp_path / "items.csv", index=False)
    traces.to_parquet(tmp_path / f"traces_{model}.parquet")
    return store.path


def _probe(tmp_path, model, signal_layer):
    store = _write(tmp_path, model, signal_layer)
    out = tmp_path / f"out_{model}"
    result = CliRunner().invoke(
        _app(),
        [
            "probe",
            "--store",
            str(store),
            "--items",
            str(tmp_path / "items.csv"),
            "--traces",
            str(tmp_path / f"traces_{model}.parquet"),
            "--target",
            "human_rt",
            "--out",
            str(out),
            "--cv",
            "3",
            "--n-permutations",
            "19",
            "--n-boot",
            "100",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_probe_cli_writes_sweep_and_figure(tmp_path):
    out = _probe(tmp_path, "teacher", signal_layer=2)
    table = pd.read_csv(out / "probe_sweep.csv")
    for column in (
        "model",
        "target",
        "position",
        "site",
        "score",
        "score_lo",
        "score_hi",
        "r2",
        "null_mean",
        "score_minus_null",
        "p_perm",
        "alpha",
        "n",
    ):
        assert column in table
    layers = table[table["site"].str.startswith("resid_post")].set_index("site")
    assert layers["score"].idxmax() == "resid_post.2" and layers.loc["resid_post.2", "score"] > 0.7
    assert layers.loc["resid_post.2", "p_perm"] == pytest.approx(1 / 20)
    assert (layers["n"] == N_ITEMS).all()  # prompt_end: one row per item, duplicates dropped
    assert {"baseline:prompt_tokens", "baseline:feat_digits"} <= set(table["site"])
    assert (out / "probe_depth.png").stat().st_size > 0
    preds = pd.read_parquet(out / "oof_predictions.parquet")
    assert len(preds) == len(table) * N_ITEMS
    best = pd.read_csv(out / "best_site.csv").iloc[0]  # selection-adjusted, 10 halvings
    assert best["site"] == "resid_post.2" and best["picked"] >= 0.9 and best["score_lo"] > 0.3
    assert best["score_raw"] == pytest.approx(layers.loc["resid_post.2", "score"])
    assert best["p_fwe"] == pytest.approx(1 / 20) and best["diff_baseline_lo"] > 0


@pytest.mark.slow
def test_probe_compare_cli(tmp_path):
    stores = [_write(tmp_path, "teacher", 2), _write(tmp_path, "student", -1)]
    traces = pd.concat(
        [pd.read_parquet(tmp_path / f"traces_{m}.parquet") for m in ("teacher", "student")]
    )
    traces.to_parquet(tmp_path / "traces.parquet")
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        _app(),
        [
            "probe-compare",
            "--store-a",
            str(stores[0]),
            "--store-b",
            str(stores[1]),
            "--items",
            str(tmp_path / "items.csv"),
            "--traces",
            str(tmp_path / "traces.parquet"),
            "--target",
            "human_rt",
            "--out",
            str(out),
            "--cv",
            "3",
            "--n-splits",
            "4",
            "--depths",
            "0.5,1",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "probe_compare.csv")
    best = table[table["comparison"] == "best_layer"].iloc[0]
    assert best["model_a"] == "teacher" and best["site_a"] == "resid_post.2"
    assert best["diff"] > 0.4 and best["diff_lo"] > 0  # teacher encodes it, student does not
    assert best["p_holm"] == pytest.approx(best["p"])  # one primary row: Holm changes nothing
    depth = table[table["comparison"] == "depth"].set_index("depth")
    assert list(depth.index) == [0.5, 1.0] and depth.loc[1.0, "site_a"] == "resid_post.2"
    assert depth.loc[0.5, "diff"] == 0  # layer 1 holds the same vectors in both stores
    assert depth.loc[1.0, "p_holm"] == pytest.approx(depth.loc[1.0, "p"])  # the one defined p
    assert (out / "probe_depth_compare.png").exists()
    bad = CliRunner().invoke(
        _app(),
        ["probe-compare", "--store-a", str(stores[0]), "--store-b", str(stores[1])]
        + ["--items", str(tmp_path / "items.csv"), "--traces", str(tmp_path / "traces.parquet")]
        + ["--target", "human_rt", "--out", str(out), "--depths", "half"],
    )
    assert bad.exit_code == 2 and "--depths 'half'" in bad.output


def test_probe_cli_bad_target_is_clean_error(tmp_path):
    store = _write(tmp_path, "teacher", 1)
    result = CliRunner().invoke(
        _app(),
        [
            "probe",
            "--store",
            str(store),
            "--items",
            str(tmp_path / "items.csv"),
            "--traces",
            str(tmp_path / "traces_teacher.parquet"),
            "--target",
            "speed",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2 and "unknown target" in result.output


def test_store_sweep_adds_a_token_index_baseline_after_the_prompt(tmp_path):
    """At think_close the token index is prompt + reasoning length: a baseline reads the target
    from the position alone, while noise activations do not; a feature some items lack is left
    out with a warning."""
    from probes.store_sweep import sweep_store

    rng = np.random.default_rng(0)
    ids = [f"i{k}" for k in range(N_ITEMS)]
    reasoning = rng.integers(20, 400, N_ITEMS)
    rows = [
        {
            "model": "m",
            "item_id": item,
            "sample": 0,
            "site": "resid_post.0",
            "position": "think_close",
            "token_index": 10 + int(r),
        }
        for item, r in zip(ids, reasoning)
    ]
    store = ActivationStore.create_or_open(
        tmp_path / "s",
        {
            "model": "m",
            "config_hash": "x",
            "sites": ["resid_post.0"],
            "positions": ["think_close"],
            "dtype": "float32",
            "d_model": D,
        },
    )
    store.append(
        pd.DataFrame(rows), {"resid_post.0": rng.normal(size=(N_ITEMS, D)).astype(np.float32)}
    )
    items = pd.DataFrame(
        {
            "item_id": ids,
            "task": "add",
            "prompt": "q",
            "answer": "1",
            "feat_only_some": [1.0, np.nan] * (N_ITEMS // 2),
        }
    )
    traces = pd.DataFrame(
        {
            "model": "m",
            "item_id": ids,
            "task": "add",
            "sample": 0,
            "prompt_tokens": 11,
            "reasoning_tokens": reasoning,
            "answer_tokens": 2,
            "finished_thinking": True,
            "response": "1",
            "correct": True,
            "text": "t",
        }
    )
    with pytest.warns(
        UserWarning, match="'feat_only_some' at 'think_close' is missing for 30 of 60 rows"
    ):
        table, _ = sweep_store(
            store,
            items,
            traces,
            "reasoning_tokens",
            cv=3,
            n_permutations=0,
            n_boot=0,
            n_random_dims=0,
            device="cpu",
        )
    table = table.set_index("site")
    assert "baseline:feat_only_some" not in table.index
    assert table.loc["baseline:log_token_index", "score"] > 0.95
    assert abs(table.loc["resid_post.0", "score"]) < 0.35
