"""Fuzzed bad records to `handan traces import`: lines that are not objects, fields of the wrong
type, unknown or missing items, bad samples and finish reasons, duplicates, empty files. Each is
refused in one line naming the record's line (or the items), and a traces file already at --out
is left byte-identical (tests/fuzzing.py)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from fuzzing import fuzz, refused
from hypothesis import example, given
from hypothesis import strategies as st
from typer.testing import CliRunner

from experiments.cli import app
from experiments.data import load_items

IDS = load_items("binary")["item_id"].tolist()[:4]
GOOD = [{"item_id": item, "reasoning_content": "1 0 1", "content": "Answer: 101"} for item in IDS]
NOT_TEXT = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.lists(st.text(max_size=3)),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
BAD_SAMPLES = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=2**31),
    st.floats().filter(lambda x: not (x == x and x % 1 == 0 and 0 <= x < 2**31)),
    st.booleans(),
    st.text(max_size=4),
    st.lists(st.integers(0, 3), max_size=2),
)
NOT_OBJECT = st.one_of(
    st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3)
)
RUNNER = CliRunner()


@pytest.fixture(scope="module")
def existing(tmp_path_factory) -> Path:
    """A traces file from a good import: every refused import must leave it as it is."""
    folder = tmp_path_factory.mktemp("imported")
    (folder / "good.jsonl").write_text("\n".join(map(json.dumps, GOOD)) + "\n")
    result = RUNNER.invoke(app, [str(a) for a in _import(folder, folder / "good.jsonl")])
    assert result.exit_code == 0, result.output
    return folder / "traces.parquet"


def _import(folder: Path, file: Path, *more) -> list:
    out = folder / "traces.parquet"
    return ["traces", "import", file, "--model", "organism-teacher", "--items", "binary",
            "--out", out, *more]  # fmt: skip


@st.composite
def broken_records(draw):
    """(lines of a JSONL file, texts the error must name)."""
    records = [dict(r) for r in GOOD]
    i = draw(st.integers(0, len(records) - 1))
    line = f"line {i + 1}"
    kind = draw(
        st.sampled_from(
            [
                "not_object",
                "not_json",
                "text",
                "sample",
                "item",
                "unknown",
                "finish",
                "nest",
                "twice",
            ]
        )
    )
    lines = list(map(json.dumps, records))
    if kind == "not_object":
        lines[i] = json.dumps(draw(NOT_OBJECT))
        return lines, [line, "not an object"]
    if kind == "not_json":
        lines[i] = draw(st.sampled_from(["{", "{'item_id': 1}", "[1,", "nan", '{"a": }']))
        return lines, [line, "not JSON"]
    if kind == "text":
        key = draw(st.sampled_from(["reasoning_content", "content"]))
        records[i][key] = draw(NOT_TEXT)
        named = [line, key]
    elif kind == "sample":
        records[i]["sample"] = draw(BAD_SAMPLES)
        named = [line, "sample"]
    elif kind == "item":
        bad = draw(st.sampled_from([None, "drop", [IDS[0]], {"id": 1}, True, 1.5]))
        if bad == "drop" or bad is None:
            del records[i]["item_id"]
        else:
            records[i]["item_id"] = bad
        named = [line]
    elif kind == "unknown":
        records[i]["item_id"] = draw(st.text(min_size=1, max_size=8).filter(lambda s: s not in IDS))
        named = ["not in the Items table"]
    elif kind == "finish":
        records[i]["finish_reason"] = draw(
            st.one_of(st.text(max_size=6).filter(lambda s: s not in ("stop", "length")), NOT_TEXT)
        )
        named = [line, "finish_reason"]
    elif kind == "nest":
        key = draw(st.sampled_from(["message", "choices", "response"]))
        value = draw(NOT_OBJECT.filter(lambda v: v is not None and v != []))
        records[i] = {"item_id": IDS[i], key: [value] if key == "choices" else value}
        named = [line]
    else:  # the same (item_id, sample) twice
        records.append({**records[i], "sample": 0})
        records[i]["sample"] = 0
        named = ["appear more than once"]
    return list(map(json.dumps, records)), named


@fuzz(60)
@given(case=broken_records())
@example(case=([json.dumps(GOOD[0]), "[1, 2]"], ["line 2", "not an object"]))  # AttributeError
@example(case=([json.dumps({**GOOD[0], "sample": -1})], ["line 1", "sample"]))  # was accepted
@example(case=([json.dumps({**GOOD[0], "sample": True})], ["line 1", "sample"]))  # was accepted
@example(case=([json.dumps({**GOOD[0], "sample": 10**30})], ["sample"]))  # OverflowError
@example(case=([json.dumps({**GOOD[0], "content": {"a": 1}})], ["content"]))  # tokenizer error
@example(case=([json.dumps({**GOOD[0], "item_id": ["a"]})], ["line 1"]))  # TypeError
@example(case=([json.dumps({"item_id": IDS[0], "response": 5})], ["line 1"]))  # AttributeError
def test_bad_records_are_refused_naming_the_line(existing, case):
    lines, named = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copy(existing, folder / "traces.parquet")
        file = folder / "records.jsonl"
        file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        refused(_import(folder, file), folder, *named)


@pytest.mark.parametrize(
    "content, more, named",
    [
        (b"", [], "no records"),
        (b"\n\n", [], "no records"),
        (b"\xff\xfe{}", [], "UTF-8"),
        (b"{}", ["--format", "nope"], "nope"),
        (json.dumps(GOOD[0]).encode(), ["--field", "x"], "--field"),
        (json.dumps(GOOD[0]).encode(), ["--field", "sample=item_id"], "sample"),
        (json.dumps({"item_id": IDS[0], "text": 5}).encode(), ["--format", "generic"], "text"),
    ],
)
def test_bad_files_and_options_are_refused(existing, tmp_path, content, more, named):
    shutil.copy(existing, tmp_path / "traces.parquet")
    file = tmp_path / "records.jsonl"
    file.write_bytes(content)
    refused(_import(tmp_path, file, *more), tmp_path, named)


@pytest.mark.parametrize(
    "column, values, named",
    [
        ("sample", [0.0, 1.5, 2.0, 3.0], "row 2"),
        ("sample", [0, -1, 2, 3], "row 2"),
        ("reasoning_content", [1, 2, 3, 4], "row 1"),
        ("item_id", [None] * 4, "row 1"),
    ],
)
def test_bad_parquet_records_are_refused_naming_the_row(existing, tmp_path, column, values, named):
    import pandas as pd

    shutil.copy(existing, tmp_path / "traces.parquet")
    records = pd.DataFrame(GOOD).assign(**{column: values})
    records.to_parquet(tmp_path / "records.parquet", index=False)
    refused(_import(tmp_path, tmp_path / "records.parquet"), tmp_path, named)
