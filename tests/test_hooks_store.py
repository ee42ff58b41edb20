"""The activation store: atomic appends, resume, config mismatch, kill mid-shard, absent rows."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hooks.atomic as atomic_mod
import hooks.store as store_mod
from hooks import ActivationStore

SITES = ["resid_post.0", "resid_post.2"]
POSITIONS = ["prompt_end", "think_close"]
D = 8


def manifest(**over: object) -> dict:
    return {
        "model": "tiny",
        "config_hash": "abc",
        "sites": SITES,
        "positions": POSITIONS,
        "dtype": "float32",
        "d_model": D,
        **over,
    }


def batch(
    items: list[str], sample: int = 0, seed: int = 0, absent: frozenset = frozenset()
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Index rows for ``items`` x SITES x POSITIONS and their random vectors; positions in
    ``absent`` never occurred (token_index -1, no vector)."""
    rng = np.random.default_rng(seed)
    rows = [
        {
            "model": "tiny",
            "item_id": i,
            "sample": sample,
            "site": s,
            "position": p,
            "token_index": -1 if p in absent else 10 + k,
        }
        for i in items
        for s in SITES
        for k, p in enumerate(POSITIONS)
    ]
    df = pd.DataFrame(rows)
    vectors = {
        s: rng.standard_normal((((df.site == s) & (df.token_index >= 0)).sum(), D)).astype(
            np.float32
        )
        for s in SITES
    }
    return df, vectors


def expected(df: pd.DataFrame, vectors: dict, site: str, position: str) -> np.ndarray:
    """The vectors of ``site``/``position`` picked by hand from one batch."""
    present = df[(df.site == site) & (df.token_index >= 0)].reset_index(drop=True)
    return vectors[site][present.index[present.position == position]]


def test_append_then_load_in_index_order(tmp_path: Path) -> None:
    store = ActivationStore.create_or_open(tmp_path / "s", manifest())
    df1, v1 = batch(["a", "b"], seed=1)
    df2, v2 = batch(["c"], seed=2)
    store.append(df1, v1)
    store.append(df2, v2)
    X, idx = ActivationStore(tmp_path / "s").load("resid_post.2", "think_close")
    want = np.concatenate(
        [
            expected(df1, v1, "resid_post.2", "think_close"),
            expected(df2, v2, "resid_post.2", "think_close"),
        ]
    )
    np.testing.assert_array_equal(X, want)
    assert X.dtype == np.float32 and idx["item_id"].tolist() == ["a", "b", "c"]
    assert (idx["token_index"] == 11).all() and set(idx["position"]) == {"think_close"}
    assert sorted(p.name for p in (tmp_path / "s" / "shards").iterdir()) == [
        "shard-000001.safetensors",
        "shard-000002.safetensors",
    ]
    assert store.completed() == {("a", 0), ("b", 0), ("c", 0)}
    man = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert man["d_model"] == D and man["handan_version"] and man["created"]


def test_a_site_narrower_than_d_model_is_stored_at_its_width(tmp_path: Path) -> None:
    """``widths`` (e.g. one attention head's d_head) overrides d_model for its site only."""
    store = ActivationStore.create_or_open(tmp_path / "s", manifest(widths={"resid_post.0": 3}))
    df, v = batch(["a", "b"], seed=4)
    v["resid_post.0"] = v["resid_post.0"][:, :3].copy()
    store.append(df, v)
    X, _ = ActivationStore(tmp_path / "s").load("resid_post.0", "prompt_end")
    np.testing.assert_array_equal(X, expected(df, v, "resid_post.0", "prompt_end"))
    assert X.shape == (2, 3) and store.width("resid_post.2") == D
    with pytest.raises(ValueError, match=r"need \(2, 3\)"):
        store.append(*batch(["c"], seed=5))  # d_model-wide vectors for the narrow site


def test_absent_rows_are_indexed_without_vectors(tmp_path: Path) -> None:
    store = ActivationStore.create_or_open(tmp_path / "s", manifest())
    df, v = batch(["a", "b"], absent=frozenset({"think_close"}))
    store.append(df, v)
    X, idx = store.load("resid_post.0", "think_close")
    assert X.shape == (0, D) and len(idx) == 0
    absent = store.index[store.index.position == "think_close"]
    assert len(absent) == 4 and (absent.shard == "").all() and (absent.row == -1).all()
    assert (absent.token_index == -1).all()
    X, _ = store.load("resid_post.0", "prompt_end")
    np.testing.assert_array_equal(X, v["resid_post.0"])
    counts = {
        (c["site"], c["position"]): (c["saved"], c["absent"]) for c in store.summary()["counts"]
    }
    assert counts[("resid_post.0", "think_close")] == (0, 2)
    assert counts[("resid_post.2", "prompt_end")] == (2, 0)
    # a batch where every position is absent writes no shard at all
    df, v = batch(["z"], absent=frozenset(POSITIONS))
    store.append(df, {})
    assert len(list((tmp_path / "s" / "shards").iterdir())) == 1 and ("z", 0) in store.completed()


def test_reopen_resumes_and_refuses_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "s"
    ActivationStore.create_or_open(path, manifest()).append(*batch(["a"]))
    reopened = ActivationStore.create_or_open(path, manifest(created="later"))
    assert reopened.completed() == {("a", 0)}
    with pytest.raises(ValueError, match=r"already in .*completed\(\)"):
        reopened.append(*batch(["a"]))
    reopened.append(*batch(["a"], sample=1))
    assert ActivationStore(path).completed() == {("a", 0), ("a", 1)}


@pytest.mark.parametrize(
    "key,value",
    [
        ("config_hash", "zzz"),
        ("model", "other"),
        ("dtype", "float16"),
        ("sites", ["resid_post.0"]),
        ("d_model", 16),
        ("widths", {"resid_post.0": 4}),
    ],
)
def test_config_mismatch_refuses_to_append(tmp_path: Path, key: str, value: object) -> None:
    ActivationStore.create_or_open(tmp_path / "s", manifest()).close()
    with pytest.raises(ValueError, match=rf"{key}: store has .*another\s+--out"):
        ActivationStore.create_or_open(tmp_path / "s", manifest(**{key: value}))


def test_config_mismatch_names_the_changed_generation_setting(tmp_path: Path) -> None:
    gen = {"max_new_tokens": 64, "temperature": 0.6}
    ActivationStore.create_or_open(tmp_path / "s", manifest(generation=gen)).close()
    with pytest.raises(
        ValueError, match=r"\(generation.max_new_tokens: store has 64, run has 128\); rerun"
    ):
        ActivationStore.create_or_open(
            tmp_path / "s", manifest(config_hash="other", generation={**gen, "max_new_tokens": 128})
        )
    ActivationStore.create_or_open(
        tmp_path / "w", manifest(weights={"source": "organism:teacher"})
    ).close()
    with pytest.raises(
        ValueError, match=r"weights.source: store has 'organism:teacher', run has 'out/teacher'"
    ):
        ActivationStore.create_or_open(
            tmp_path / "w", manifest(config_hash="other", weights={"source": "out/teacher"})
        )


def test_a_second_writer_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    first = ActivationStore.create_or_open(tmp_path / "s", manifest())
    first.append(*batch(["a"]))
    with pytest.raises(FileExistsError, match="another process is writing"):
        ActivationStore.create_or_open(tmp_path / "s", manifest())
    assert ActivationStore(tmp_path / "s").completed() == {("a", 0)}  # reading needs no lock
    first.close()
    with ActivationStore.create_or_open(tmp_path / "s", manifest()) as second:
        second.append(*batch(["b"]))
    assert ActivationStore(tmp_path / "s").completed() == {("a", 0), ("b", 0)}


def test_a_batch_with_every_position_absent_is_indexed_without_a_shard(tmp_path: Path) -> None:
    store = ActivationStore.create_or_open(tmp_path / "s", manifest())
    df, _ = batch(["a"], absent=frozenset(POSITIONS))
    store.append(df, {})
    assert store.completed() == {("a", 0)} and (store.index["shard"] == "").all()
    assert not list((tmp_path / "s" / "shards").iterdir())
    with pytest.raises(ValueError, match="no present index rows use them; drop those keys"):
        store.append(
            batch(["b"], absent=frozenset(POSITIONS))[0], {"resid_post.0": np.zeros((1, D))}
        )


def test_kill_mid_shard_leaves_no_corrupt_shard_and_resume_is_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = [batch(["a", "b"], seed=1), batch(["c"], seed=2), batch(["d"], seed=3)]
    clean = ActivationStore.create_or_open(tmp_path / "clean", manifest())
    for df, v in batches:
        clean.append(df, v)

    killed = ActivationStore.create_or_open(tmp_path / "killed", manifest())
    killed.append(*batches[0])
    (tmp_path / "killed" / "shards" / "shard-000009.safetensors.tmp").write_bytes(
        b"half"
    )  # a SIGKILL's
    real_replace = os.replace
    calls = []

    def dying_replace(src: str, dst: str) -> None:  # the shard is renamed, then the index dies
        calls.append(Path(dst).name)
        if Path(dst).name.endswith(".staged"):  # the new index part, before it joins the index
            raise OSError("killed")
        real_replace(src, dst)

    monkeypatch.setattr(atomic_mod.os, "replace", dying_replace)
    with pytest.raises(OSError, match="killed"):
        killed.append(*batches[1])
    monkeypatch.setattr(atomic_mod.os, "replace", real_replace)
    killed.close()  # what the process's death does to its lock
    assert calls == ["shard-000002.safetensors", "part-000002.parquet.staged"]
    leftovers = {p.name for p in (tmp_path / "killed").rglob("*") if p.is_file()}
    assert "shard-000002.safetensors" in leftovers  # renamed, but the index never referenced it
    assert not [n for n in leftovers if n.startswith("part-000002")]  # the failed write cleaned up
    # the index is still what the first append wrote (pyarrow reads the folder as one table)
    import pyarrow.parquet as pq

    assert len(pq.read_table(tmp_path / "killed" / "index.parquet")) == len(batches[0][0])

    # the interrupted batch is not complete; reopening deletes its shard and the tmp file
    resumed = ActivationStore.create_or_open(tmp_path / "killed", manifest())
    assert resumed.completed() == {("a", 0), ("b", 0)}
    assert not list((tmp_path / "killed").rglob("*.tmp"))
    assert not (tmp_path / "killed" / "shards" / "shard-000002.safetensors").exists()
    for df, v in batches[1:]:
        resumed.append(df, v)
    pd.testing.assert_frame_equal(resumed.index, clean.index)
    for site in SITES:
        for position in POSITIONS:
            np.testing.assert_array_equal(
                resumed.load(site, position)[0], clean.load(site, position)[0]
            )


def test_bad_input_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="handan record --out"):
        ActivationStore(tmp_path / "nothing")
    store = ActivationStore.create_or_open(tmp_path / "s", manifest())
    df, v = batch(["a"])
    with pytest.raises(ValueError, match="has no site 'resid_post.1'; it has"):
        store.load("resid_post.1", "prompt_end")
    with pytest.raises(ValueError, match="no position 'answer_end'; it has"):
        store.load("resid_post.0", "answer_end")
    with pytest.raises(ValueError, match=r"shape \(1, 8\); the index rows need \(2, 8\)"):
        store.append(df, {**v, "resid_post.0": v["resid_post.0"][:1]})
    with pytest.raises(ValueError, match="no vectors"):
        store.append(df, {"resid_post.0": v["resid_post.0"]})
    with pytest.raises(ValueError, match="model"):
        store.append(df.assign(model="other"), v)
    with pytest.raises(ValueError, match="not in the store's manifest"):
        store.append(df.assign(site="mlp_out.0"), v)
    with pytest.raises(ValueError, match="dtype"):
        ActivationStore.create_or_open(tmp_path / "t", manifest(dtype="int8"))
    assert store.completed() == set()  # nothing half-written by the refused appends
    (tmp_path / "half").mkdir()  # a creation killed before its manifest landed is reusable
    (tmp_path / "half" / "index.parquet.tmp").write_bytes(b"partial")
    ActivationStore.create_or_open(tmp_path / "half", manifest()).append(*batch(["a"]))
    assert ActivationStore(tmp_path / "half").completed() == {("a", 0)}
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(FileExistsError, match="another --out"):
        ActivationStore.create_or_open(tmp_path / "full", manifest())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_stores(tmp_path: Path, dtype: str) -> None:
    torch = pytest.importorskip("torch")
    store = ActivationStore.create_or_open(tmp_path / "s", manifest(dtype=dtype))
    df, v = batch(["a", "b"])
    store.append(df, {s: torch.from_numpy(x) for s, x in v.items()})  # torch tensors accepted
    X, _ = store.load("resid_post.0", "prompt_end")
    want = torch.from_numpy(expected(df, v, "resid_post.0", "prompt_end")).to(getattr(torch, dtype))
    np.testing.assert_array_equal(X, want.float().numpy())
    assert X.dtype == np.float32


def test_docstring_snippet_reads_the_store_without_handan(tmp_path: Path) -> None:
    path = tmp_path / "s"
    store = ActivationStore.create_or_open(path, manifest())
    store.append(*batch(["a", "b"], seed=1, absent=frozenset({"think_close"})))
    store.append(*batch(["c"], seed=2))
    code = re.search(r"without handan.*?::\n\n(.*?)\n\"\"\"", store_mod.__doc__ + '"""', re.DOTALL)
    assert code is not None
    lines = [line[4:] for line in code.group(1).splitlines()]
    assert len(lines) <= 5
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "```python\n" + "\n".join(lines) + "\n```" in readme  # the README shows the same snippet
    for site in SITES:
        for position in POSITIONS:
            scope = {"store": str(path), "site": site, "position": position}
            exec("\n".join(lines), scope)  # noqa: S102 - the documented snippet, verbatim
            X, index = store.load(site, position)
            np.testing.assert_array_equal(scope["X"], X)
            assert [r["item_id"] for r in scope["rows"]] == index["item_id"].tolist()


def test_cli_store_info(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from experiments.cli.store import register

    app = typer.Typer()
    register(app)
    store = ActivationStore.create_or_open(tmp_path / "s", manifest())
    store.append(*batch(["a", "b"], absent=frozenset({"think_close"})))
    store.append(*batch(["c"]))
    result = CliRunner().invoke(app, ["store", "info", str(tmp_path / "s")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "config_hash" in result.output and "abc" in result.output
    lines = [
        line
        for line in result.output.splitlines()
        if "resid_post" in line and "think_close" in line
    ]
    assert len(lines) == 2 and all(re.search(r"\b1\s*│\s*2\b", line) for line in lines)
    assert re.search(r"n_traces\s*│\s*3\b", result.output)
    missing = CliRunner().invoke(app, ["store", "info", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "handan record --out" in missing.output


def test_import_and_float32_load_need_no_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    store = ActivationStore.create_or_open(tmp_path / "s", manifest())
    store.append(*batch(["a"]))
    code = (
        "import sys, hooks\n"
        "assert 'torch' not in sys.modules\n"
        f"X, _ = hooks.ActivationStore({str(tmp_path / 's')!r}).load('resid_post.0', 'prompt_end')\n"
        "assert X.shape == (1, 8) and 'torch' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_an_append_adds_one_index_part_and_rewrites_nothing(tmp_path: Path) -> None:
    store = ActivationStore.create_or_open(tmp_path / "s", manifest())
    folder = tmp_path / "s" / "index.parquet"
    seen: dict[str, bytes] = {}
    for k, items in enumerate([["a", "b"], ["c"], ["d", "e", "f"]]):
        store.append(*batch(items, seed=k))
        parts = {p.name: p.read_bytes() for p in folder.iterdir()}
        assert len(parts) == k + 2  # the empty schema part + one per append
        assert all(parts[name] == data for name, data in seen.items())  # earlier parts untouched
        seen = parts
    reopened = ActivationStore(tmp_path / "s")
    pd.testing.assert_frame_equal(reopened.index, store.index)
    assert reopened.completed() == {(i, 0) for i in "abcdef"}


def test_an_older_store_with_one_index_file_is_read_but_not_appended(tmp_path: Path) -> None:
    import shutil

    path = tmp_path / "s"
    store = ActivationStore.create_or_open(path, manifest())
    df, v = batch(["a", "b"], seed=1)
    store.append(df, v)
    store.close()
    index = pd.read_parquet(path / "index.parquet")
    shutil.rmtree(path / "index.parquet")
    index.to_parquet(path / "index.parquet")  # the layout of earlier handan versions
    old = ActivationStore(path)
    np.testing.assert_array_equal(
        old.load("resid_post.0", "prompt_end")[0], expected(df, v, "resid_post.0", "prompt_end")
    )
    with pytest.raises(FileExistsError, match="older handan"):
        ActivationStore.create_or_open(path, manifest())


def test_merging_shard_stores_gives_the_union_and_refuses_what_does_not_fit(tmp_path: Path) -> None:
    from experiments.generation.merge import merge_outputs

    parts = {
        "1/2": [batch(["a", "b"], seed=1, absent=frozenset({"think_close"})), batch(["c"], seed=2)],
        "2/2": [batch(["d"], seed=3), batch(["e"], seed=4, absent=frozenset(POSITIONS))],
    }
    paths = {}
    for label, batches in parts.items():
        paths[label] = tmp_path / label.replace("/", "-of-")
        with ActivationStore.create_or_open(paths[label], manifest(shard=label)) as st:
            for df, v in batches:
                st.append(df, {s: x for s, x in v.items() if len(x)})
    with pytest.raises(ValueError, match=r"missing \[2\]"):
        merge_outputs([paths["1/2"]], tmp_path / "m")
    other = tmp_path / "other"
    ActivationStore.create_or_open(other, manifest(shard="2/2", config_hash="zzz")).close()
    with pytest.raises(FileExistsError, match="config_hash"):
        merge_outputs([paths["1/2"], other], tmp_path / "m")
    assert "2 stores" in merge_outputs([paths["1/2"], paths["2/2"]], tmp_path / "m")
    merged = ActivationStore(tmp_path / "m")
    assert merged.completed() == {(i, 0) for i in "abcde"}
    assert merged.manifest["merged_from"] == ["1/2", "2/2"] and merged.manifest["shard"] is None
    all_batches = [b for batches in parts.values() for b in batches]
    for site in SITES:
        for position in POSITIONS:
            X, rows = merged.load(site, position)
            want = {}
            for df, v in all_batches:
                present = df[(df.site == site) & (df.position == position) & (df.token_index >= 0)]
                for item, x in zip(present.item_id, expected(df, v, site, position)):
                    want[item] = x
            assert sorted(rows.item_id) == sorted(want)
            for item, x in zip(rows.item_id, X):
                np.testing.assert_array_equal(x, want[item])
    absent = merged.index[merged.index.token_index < 0]
    assert set(absent.item_id) == {"a", "b", "e"}
    with pytest.raises(FileExistsError, match="exists"):
        merge_outputs([paths["1/2"], paths["2/2"]], tmp_path / "m")
