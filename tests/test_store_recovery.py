"""`handan record` on the organism after damage: a repaired store, a store one append ahead of
its traces (a kill between the two writes), a store whose traces file was deleted, a traces file
of an older handan. Each ends equal to an uninterrupted run or in one line naming the fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from experiments.cli import app

pytestmark = pytest.mark.slow  # five `handan record` runs of the organism (about 40 s)

runner = CliRunner()


@pytest.fixture(scope="module")
def items_file(tmp_path_factory) -> Path:
    from experiments.models.organism.task import organism_items

    items = organism_items().groupby("task").head(2)[["item_id", "task", "prompt", "answer"]]
    path = tmp_path_factory.mktemp("items") / "items.parquet"
    items.to_parquet(path)
    return path


def record(items_file: Path, out: Path):
    args = ["record", "--model", "organism-teacher", "--items", str(items_file), "--out", str(out)]
    args += ["--max-new-tokens", "40", "--batch-size", "3", "--temperature", "1.0"]
    args += ["--positions", "prompt_end,step_8,think_close"]
    return runner.invoke(app, args, env={"COLUMNS": "300"})


@pytest.fixture(scope="module")
def clean(items_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "store"
    result = record(items_file, out)
    assert result.exit_code == 0, result.output
    return out


def contents(store_path: Path):
    """Traces (sorted) and every vector's bytes with its key: what must equal a clean run's."""
    from hooks.store import ActivationStore

    store = ActivationStore(store_path)
    vectors = {}
    for site in store.sites:
        for position in store.positions:
            X, rows = store.load(site, position)
            order = np.lexsort((rows["sample"].to_numpy(), rows["item_id"].to_numpy()))
            keys = rows.iloc[order][["item_id", "sample", "token_index"]].reset_index(drop=True)
            vectors[(site, position)] = (X[order].tobytes(), keys.to_dict("list"))
    traces = pd.read_parquet(store_path / "traces.parquet")
    return traces.sort_values(["item_id", "sample"]).reset_index(drop=True), vectors


def assert_same(a: Path, b: Path) -> None:
    (ta, va), (tb, vb) = contents(a), contents(b)
    pd.testing.assert_frame_equal(ta, tb)
    assert va == vb


def test_a_cut_shard_is_refused_then_repair_and_a_rerun_equal_an_uninterrupted_run(
    items_file, clean, tmp_path
):
    out = tmp_path / "store"
    shutil.copytree(clean, out)
    shard = out / "shards" / "shard-000002.safetensors"
    shard.write_bytes(shard.read_bytes()[:-100])
    refused = record(items_file, out)
    assert refused.exit_code == 2 and "shard-000002.safetensors has" in refused.output
    assert "handan store repair" in refused.output
    repaired = runner.invoke(app, ["store", "repair", str(out)])
    assert repaired.exit_code == 0 and "removed 1 index part(s)" in repaired.output
    rerun = record(items_file, out)
    assert rerun.exit_code == 0, rerun.output
    assert_same(out, clean)
    assert runner.invoke(app, ["store", "verify", str(out)]).exit_code == 0


def test_a_store_one_append_ahead_of_its_traces_resumes_to_an_uninterrupted_run(
    items_file, clean, tmp_path, monkeypatch
):
    """A kill after a batch's store append and before its traces part. Before: the rerun
    regenerated the batch and the store refused it ("already in store")."""
    from experiments.generation import tracefile

    real, calls = tracefile.append_part, []

    def dies_on_the_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed between the store append and the traces part")
        real(*args, **kwargs)

    out = tmp_path / "store"
    monkeypatch.setattr(tracefile, "append_part", dies_on_the_second_batch)
    killed = record(items_file, out)
    assert isinstance(killed.exception, RuntimeError)
    monkeypatch.setattr(tracefile, "append_part", real)
    assert len(list((out / "shards").iterdir())) == 2  # the store holds the second batch
    rerun = record(items_file, out)
    assert rerun.exit_code == 0, rerun.output
    assert_same(out, clean)


def test_a_deleted_traces_file_is_refused_up_front_naming_the_fix(items_file, clean, tmp_path):
    """Before: the samples were regenerated, then the store refused them ("already in store",
    naming an internal call as the fix)."""
    out = tmp_path / "store"
    shutil.copytree(clean, out)
    (out / "traces.parquet").unlink()
    before = {p.name: p.read_bytes() for p in (out / "shards").iterdir()}
    refused = record(items_file, out)
    assert refused.exit_code == 2
    (line,) = [x for x in refused.output.splitlines() if x.startswith("error:")]
    assert "holds activations of 10 (item, sample) pairs whose traces are not in" in line
    assert f"restore {out / 'traces.parquet'}, or delete {out}" in line
    assert not (out / "traces.parquet").exists() and not (out / "traces.parquet.parts").exists()
    assert {p.name: p.read_bytes() for p in (out / "shards").iterdir()} == before


def test_a_traces_file_of_an_older_handan_is_not_resumed(items_file, clean, tmp_path):
    import pyarrow.parquet as pq

    from experiments.generation.tracefile import FORMAT_KEY

    out = tmp_path / "store"
    shutil.copytree(clean, out)
    table = pq.read_table(out / "traces.parquet")
    meta = {k: v for k, v in table.schema.metadata.items() if k != FORMAT_KEY}
    pq.write_table(table.replace_schema_metadata(meta), out / "traces.parquet")
    refused = record(items_file, out)
    assert refused.exit_code == 2
    assert "was written by an older handan (traces format 1" in refused.output
    (out / "traces.parquet").write_bytes(b"PAR1 cut")
    cut = record(items_file, out)
    assert cut.exit_code == 2 and "traces.parquet is not a readable traces file" in cut.output
