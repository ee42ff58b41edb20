"""A damaged activation store is detected on open, never read as numbers: sizes and sha256
recorded at write, `handan store verify` / `handan store repair`, a missing or stale index, a
corrupt manifest, stores written before the checksums existed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from experiments.errors import InputError, MissingInput
from hooks import ActivationStore

SITES = ["resid_post.0", "resid_post.1"]
POSITIONS = ["prompt_end", "think_close"]
D = 8
BATCHES = [["a", "b"], ["c"], ["d", "e"]]


def manifest() -> dict:
    return dict(
        model="tiny",
        config_hash="abc",
        sites=SITES,
        positions=POSITIONS,
        dtype="float32",
        d_model=D,
    )


def batch(items: list[str], seed: int) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    rows = [
        dict(model="tiny", item_id=i, sample=0, site=s, position=p, token_index=3 + k)
        for i in items
        for s in SITES
        for k, p in enumerate(POSITIONS)
    ]
    rng = np.random.default_rng(seed)
    n = len(items) * len(POSITIONS)
    return pd.DataFrame(rows), {s: rng.standard_normal((n, D)).astype(np.float32) for s in SITES}


def filled(path: Path, batches=BATCHES) -> Path:
    with ActivationStore.create_or_open(path, manifest()) as store:
        for k, items in enumerate(batches):
            store.append(*batch(items, seed=k))
    return path


def vectors(path: Path) -> dict:
    store = ActivationStore(path)
    out = {}
    for site in SITES:
        for position in POSITIONS:
            X, rows = store.load(site, position)
            order = np.argsort(rows["item_id"].to_numpy(), kind="stable")
            out[(site, position)] = (X[order].tobytes(), rows["item_id"].to_numpy()[order].tolist())
    return out


def shard(path: Path, k: int) -> Path:
    return path / "shards" / f"shard-{k:06d}.safetensors"


def cli(*args: str):
    from experiments.cli.store import register

    app = typer.Typer()
    register(app)
    return CliRunner().invoke(app, ["store", *map(str, args)], env={"COLUMNS": "300"})


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_a_clean_store_verifies_and_needs_no_repair(tmp_path: Path) -> None:
    path = filled(tmp_path / "s")
    result = cli("verify", path)
    assert result.exit_code == 0, result.output
    assert "4 index parts and 3 shards verified, no problem" in result.output
    assert "nothing to repair" in cli("repair", path).output
    assert ActivationStore(path).completed() == {(i, 0) for b in BATCHES for i in b}


def test_a_missing_index_is_refused_and_no_shard_is_deleted(tmp_path: Path) -> None:
    """Before: the store read as empty, and the next `record` deleted every shard."""
    path = filled(tmp_path / "s")
    shutil.rmtree(path / "index.parquet")
    for open_it in (ActivationStore, lambda p: ActivationStore.create_or_open(p, manifest())):
        with pytest.raises(MissingInput, match=r"index\.parquet is missing.*handan store repair"):
            open_it(path)
    assert len(list((path / "shards").iterdir())) == 3  # nothing deleted
    info = cli("info", path)
    assert info.exit_code == 2 and len(error_lines(info.output)) == 1
    assert "index.parquet is missing" in info.output
    verify = cli("verify", path)
    assert verify.exit_code == 2
    assert sum("shard-00000" in line for line in error_lines(verify.output)) == 3
    repaired = cli("repair", path)  # the user's choice: drop what no index describes
    assert repaired.exit_code == 0 and "3 shard(s)" in repaired.output
    assert ActivationStore(path).completed() == set()
    assert not list((path / "shards").iterdir())


def test_an_index_that_lost_a_part_is_refused_until_repaired(tmp_path: Path) -> None:
    """A stale index (a part lost, its shard left): never silently read as a smaller store."""
    path = filled(tmp_path / "s")
    (path / "index.parquet" / "part-000001.parquet").unlink()  # a and b's batch
    with pytest.raises(InputError, match=r"shards holds 1 shard\(s\) no index part references"):
        ActivationStore(path)
    with pytest.raises(InputError, match="handan store repair"):
        ActivationStore.create_or_open(path, manifest())
    assert shard(path, 1).exists()
    assert cli("repair", path).exit_code == 0
    assert not shard(path, 1).exists()
    assert ActivationStore(path).completed() == {("c", 0), ("d", 0), ("e", 0)}


def test_the_shard_of_an_append_in_flight_is_not_a_stale_index(tmp_path: Path) -> None:
    """An append killed between its shard and its index part leaves the newest shard behind:
    readers ignore it, the next writer deletes it (the resume the fault-injection test checks)."""
    path = filled(tmp_path / "s")
    (path / "index.parquet" / "part-000003.parquet").unlink()  # shard 3 is now that leftover
    assert ActivationStore(path).completed() == {("a", 0), ("b", 0), ("c", 0)}
    ActivationStore.create_or_open(path, manifest()).close()
    assert not shard(path, 3).exists()


def test_a_truncated_shard_is_refused_on_open_naming_it_and_the_fix(tmp_path: Path) -> None:
    """Before: it passed `store info` and a rerun; `probe` then crashed with SafetensorError."""
    path = filled(tmp_path / "s")
    data = shard(path, 2).read_bytes()
    shard(path, 2).write_bytes(data[:-40])
    want = rf"shard-000002\.safetensors has {len(data) - 40} bytes, {len(data)} were written"
    with pytest.raises(InputError, match=want + r".*handan store repair"):
        ActivationStore(path)
    with pytest.raises(InputError, match=want):
        ActivationStore.create_or_open(path, manifest())
    info = cli("info", path)
    assert info.exit_code == 2 and len(error_lines(info.output)) == 1
    assert "shard-000002.safetensors" in info.output and "handan store repair" in info.output


def test_an_altered_shard_is_never_read_then_repair_and_rerun_equal_a_clean_store(
    tmp_path: Path,
) -> None:
    clean = filled(tmp_path / "clean")
    path = filled(tmp_path / "s")
    data = bytearray(shard(path, 2).read_bytes())
    data[-5] ^= 0xFF  # one byte of c's vectors, same size
    shard(path, 2).write_bytes(bytes(data))
    store = ActivationStore(path)  # sizes match: opening is cheap and passes
    with pytest.raises(InputError, match=r"shard-000002\.safetensors does not match the sha256"):
        store.load("resid_post.1", "think_close")
    verify = cli("verify", path)
    assert verify.exit_code == 2
    (line,) = error_lines(verify.output)
    assert "shard-000002.safetensors does not match the sha256" in line
    assert f"handan store repair {path}" in line
    repaired = cli("repair", path)
    assert repaired.exit_code == 0, repaired.output
    assert "removed 1 index part(s) (1 (item, sample) pairs) and 1 shard(s)" in repaired.output
    with ActivationStore.create_or_open(path, manifest()) as store:  # what a rerun does
        todo = [i for i in "abcde" if (i, 0) not in store.completed()]
        assert todo == ["c"]
        store.append(*batch(todo, seed=1))
    assert vectors(path) == vectors(clean)
    assert cli("verify", path).exit_code == 0


def test_a_missing_shard_is_refused(tmp_path: Path) -> None:
    path = filled(tmp_path / "s")
    shard(path, 3).unlink()
    with pytest.raises(MissingInput, match=r"shard-000003\.safetensors is missing.*repair"):
        ActivationStore(path)


@pytest.mark.parametrize(
    "text,problem",
    [("{not json", "is not valid JSON"), ("[1]", "is not a JSON object"), ("{}", "lacks")],
)
def test_a_corrupt_manifest_names_the_file_and_the_fix(
    tmp_path: Path, text: str, problem: str
) -> None:
    """Before: a bare JSONDecodeError (or KeyError) naming no file."""
    path = filled(tmp_path / "s")
    (path / "manifest.json").write_text(text)
    with pytest.raises(InputError, match=rf"manifest\.json {problem}.*restore the file"):
        ActivationStore(path)
    for command in ("info", "verify", "repair"):
        result = cli(command, path)
        assert result.exit_code == 2 and len(error_lines(result.output)) == 1, command
        assert "manifest.json" in result.output


def test_an_unreadable_index_part_is_named_and_repair_drops_it(tmp_path: Path) -> None:
    path = filled(tmp_path / "s")
    (path / "index.parquet" / "part-000002.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match=r"part-000002\.parquet is not a readable index part"):
        ActivationStore(path)
    repaired = cli("repair", path)
    assert "an unknown number of (item, sample) pairs" in repaired.output
    assert not shard(path, 2).exists()  # its shard was referenced by nothing left
    assert ActivationStore(path).completed() == {("a", 0), ("b", 0), ("d", 0), ("e", 0)}


def test_a_part_repeating_pairs_is_reported_by_verify(tmp_path: Path) -> None:
    path = filled(tmp_path / "s")
    parts = path / "index.parquet"
    shutil.copy(parts / "part-000002.parquet", parts / "part-000009.parquet")
    (line,) = error_lines(cli("verify", path).output)
    assert "part-000009.parquet repeats (item_id, sample) [('c', 0)]" in line
    cli("repair", path)
    assert not (parts / "part-000009.parquet").exists() and shard(path, 2).exists()
    assert cli("verify", path).exit_code == 0


def _without_checksums(path: Path) -> None:
    """Rewrite every index part as handan wrote them before sizes and sha256 were recorded."""
    from hooks.store_format import INDEX_COLUMNS

    for part in (path / "index.parquet").iterdir():
        pd.read_parquet(part)[list(INDEX_COLUMNS)].to_parquet(part, index=False)


def test_a_store_written_before_checksums_is_read_and_verified_by_its_headers(
    tmp_path: Path,
) -> None:
    clean = filled(tmp_path / "clean")
    path = filled(tmp_path / "s")
    _without_checksums(path)
    assert vectors(path) == vectors(clean)
    result = cli("verify", path)
    assert result.exit_code == 0 and "3 shard(s) have no checksums recorded" in result.output
    with ActivationStore.create_or_open(path, manifest()) as store:  # still appended to
        store.append(*batch(["f"], seed=9))
    assert "3 shard(s) have no checksums recorded" in cli("verify", path).output
    data = shard(path, 1).read_bytes()
    shard(path, 1).write_bytes(data[:-40])  # no size recorded: its header gives it away
    (line,) = error_lines(cli("verify", path).output)
    assert f"shard-000001.safetensors has {len(data) - 40} bytes, its header says" in line
    with pytest.raises(InputError, match=r"shard-000001\.safetensors is not the safetensors file"):
        ActivationStore(path).load("resid_post.0", "prompt_end")


def test_merge_refuses_an_altered_input_shard_instead_of_checksumming_it_anew(tmp_path: Path):
    from experiments.generation.merge import merge_outputs

    paths = []
    for label, batches in {"1/2": [["a"], ["b"]], "2/2": [["c"]]}.items():
        path = tmp_path / label.replace("/", "-of-")
        with ActivationStore.create_or_open(path, {**manifest(), "shard": label}) as store:
            for k, items in enumerate(batches):
                store.append(*batch(items, seed=k))
        paths.append(path)
    data = bytearray(shard(paths[0], 2).read_bytes())
    data[-3] ^= 0x01
    shard(paths[0], 2).write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"1-of-2/shards/shard-000002\.safetensors does not match"):
        merge_outputs(paths, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()
