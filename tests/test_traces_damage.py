"""A damaged traces file, or one of an older handan, is refused in one line naming it and the fix,
never read or resumed (experiments/generation/tracefile.py)."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from experiments.contracts import TRACE_COLUMNS
from experiments.errors import InputError, SettingsMismatch
from experiments.generation import tracefile

META = {"model": "m", "temperature": 0.6, "recorded": {"batch_size": 2}}


def rows(items: list[str]) -> pd.DataFrame:
    base = {"string": "x", "int64": 1, "bool": True}
    table = pd.DataFrame(
        [
            {c: base[t] for c, t in TRACE_COLUMNS.items()} | {"item_id": i, "sample": 0}
            for i in items
        ]
    )
    return table.assign(
        prompt_ids=[[1, 2]] * len(items), generated_ids=[[3]] * len(items), finish_reason="stop"
    )


def test_a_file_and_its_parts_resume_when_undamaged(tmp_path):
    out = tmp_path / "t.parquet"
    tracefile.write_traces(rows(["a"]), out, META)
    tracefile.append_part(rows(["b"]), out, META)
    assert tracefile.existing_traces(out, META)["item_id"].tolist() == ["a", "b"]


def test_a_traces_file_of_an_older_handan_is_read_but_not_resumed(tmp_path):
    """Before: resumed, mixing two versions' generations (e.g. two samplers) in one file."""
    out = tmp_path / "t.parquet"
    tracefile.write_traces(rows(["a"]), out, META)
    table = pq.read_table(out)
    old = {k: v for k, v in table.schema.metadata.items() if k != tracefile.FORMAT_KEY}
    pq.write_table(table.replace_schema_metadata(old), out)
    assert tracefile.read_traces(out)["item_id"].tolist() == ["a"]
    with pytest.raises(SettingsMismatch, match=r"older handan \(traces format 1.*another --out"):
        tracefile.existing_traces(out, META)


@pytest.mark.parametrize("which", ["file", "part"])
def test_a_cut_traces_file_or_part_is_named_with_the_fix(tmp_path, which):
    """Before: pyarrow's bare "Parquet magic bytes not found", naming no file."""
    out = tmp_path / "t.parquet"
    tracefile.write_traces(rows(["a"]), out, META)
    tracefile.append_part(rows(["b"]), out, META)
    damaged = out if which == "file" else next(tracefile.parts_dir(out).iterdir())
    damaged.write_bytes(damaged.read_bytes()[:-30])
    fix = "restore it, or delete it and rerun" if which == "file" else "delete that part and rerun"
    with pytest.raises(InputError, match=rf"{damaged.name} is not a readable traces file.*{fix}"):
        tracefile.existing_traces(out, META)


def test_a_file_without_the_traces_columns_is_named(tmp_path):
    out = tmp_path / "t.parquet"
    pd.DataFrame({"item_id": ["a"], "sample": [0]}).to_parquet(out)
    with pytest.raises(InputError, match=r"t\.parquet lacks the traces column\(s\) \['model'"):
        tracefile.read_traces(out)
