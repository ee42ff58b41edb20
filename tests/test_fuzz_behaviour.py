"""Fuzzed bad input to `handan behaviour`: Items files, traces tables, PAIRS files and options.
Each case starts from valid tables (a planted experiment) and breaks one thing; the command must
refuse it in one line naming the column and line (or the key, or the option), with every file
left as it was (tests/fuzzing.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fuzzing import fuzz, refused
from hypothesis import example, given
from hypothesis import strategies as st

from experiments.behaviour.synthetic import planted_tables
from experiments.contracts import ITEM_REQUIRED, TRACE_COLUMNS

ITEMS, TRACES = planted_tables(n_tasks=2, n_items=8, seed=0)
NAMES = ("model", "item_id", "task")
COUNTS = ("sample", "prompt_tokens", "reasoning_tokens", "answer_tokens")
FLAGS = ("finished_thinking", "correct")
NOT_A_NUMBER = ["abc", "1,5", "one", "☃", "1e", "--1", "0x1g", "[1]", "True"]
#: values no count column may hold (an empty cell is one: a count is never missing)
BAD_COUNTS = st.one_of(
    st.sampled_from(["", "-1", "1.5", "nan", "inf", "-inf", "1e300", "2e9", *NOT_A_NUMBER]),
    st.integers(max_value=-1).map(str),
    st.floats(min_value=0.01, max_value=1e6).filter(lambda x: x % 1 != 0).map(repr),
)
BAD_FLAGS = st.sampled_from(["", "maybe", "2", "-1", "nan", "truee", "☃", "yes please", "0.5"])
UNICODE = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12)


def _write(frame: pd.DataFrame, folder: Path, name: str, fmt: str) -> Path:
    path = folder / f"{name}.{fmt}"
    if fmt == "parquet":
        frame.astype(str).where(frame.notna(), None).to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def _where(fmt: str, i: int) -> str:
    return f"line {i + 2}" if fmt == "csv" else f"row {i + 1}"


def _behaviour(folder: Path, items: Path, traces: Path, *more) -> list:
    out = folder / "out"
    return ["behaviour", "--items", items, "--traces", traces, "--out", out, "--no-figures", *more]


@st.composite
def broken_traces(draw):
    """(traces table, texts the error must name given the format)."""
    traces = TRACES.copy()
    if draw(st.booleans()):  # an extra column never hides a fault, whatever its name
        traces[draw(UNICODE.filter(lambda c: c.strip() and c not in traces))] = "x"
    kind = draw(st.sampled_from(["drop", "cell", "empty", "duplicate"]))
    if kind == "drop":
        col = draw(st.sampled_from(list(TRACE_COLUMNS)))
        return traces.drop(columns=col), lambda fmt: [repr(col)[1:-1]]
    if kind == "empty":
        return traces.iloc[:0], lambda fmt: ["no traces"]
    i = draw(st.integers(0, len(traces) - 1))
    if kind == "duplicate":
        twice = pd.concat([traces, traces.iloc[[i]]], ignore_index=True)
        return twice, lambda fmt: [
            "(model, item_id, sample)",
            f"s [{i + (2 if fmt == 'csv' else 1)},",
        ]
    col = draw(st.sampled_from(NAMES + COUNTS + FLAGS))
    bad = draw(
        st.sampled_from(["", "  "]) if col in NAMES else BAD_COUNTS if col in COUNTS else BAD_FLAGS
    )
    traces = traces.astype({col: object})
    traces.loc[i, col] = np.nan if bad == "" else bad
    return traces, lambda fmt: [f"column {col!r}", _where(fmt, i)]


@fuzz(60)
@given(case=broken_traces(), fmt=st.sampled_from(["csv", "parquet"]))
@example(case=(TRACES.iloc[:0], lambda fmt: ["no traces"]), fmt="csv")  # was: 9 files written
def test_bad_traces_tables_are_refused_naming_the_cell(case, fmt):
    traces, named = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        items = _write(ITEMS, folder, "items", "csv")
        path = _write(traces, folder, "traces", fmt)
        refused(_behaviour(folder, items, path, "--n-boot", "5"), folder, *named(fmt))


@st.composite
def broken_items(draw):
    items = ITEMS.copy()
    kind = draw(st.sampled_from(["drop", "cell", "empty", "duplicate"]))
    if kind == "drop":
        col = draw(st.sampled_from(ITEM_REQUIRED))
        return items.drop(columns=col), lambda fmt: [col]
    if kind == "empty":
        return items.iloc[:0], lambda fmt: ["empty"]
    i = draw(st.integers(0, len(items) - 1))
    if kind == "duplicate":
        j = draw(st.integers(0, len(items) - 1).filter(lambda j: j != i))
        items.loc[j, "item_id"] = items.loc[i, "item_id"]
        return items, lambda fmt: [repr(items.loc[i, "item_id"]), "unique"]
    col, bad = draw(
        st.one_of(
            st.tuples(st.sampled_from(ITEM_REQUIRED), st.sampled_from(["", " "])),
            st.tuples(
                st.sampled_from(["human_rt_s", "human_rt_sd", "human_accuracy", "n_human"]),
                st.sampled_from(NOT_A_NUMBER + ["inf", "-inf"]),
            ),
            st.tuples(st.just("human_rt_s"), st.sampled_from(["0", "-1", "-0.5", "1e400"])),
            st.tuples(st.just("human_rt_sd"), st.sampled_from(["-1", "-1e-9", "inf"])),
            st.tuples(
                st.just("human_accuracy"),
                st.floats(allow_nan=False).filter(lambda x: not 0 <= x <= 1).map(repr),
            ),
            st.tuples(
                st.just("n_human"),
                st.sampled_from(["-1", "2.5", "1e300", "inf", "99999999999999999999"]),
            ),
        )
    )
    items = items.astype({col: object})
    items.loc[i, col] = np.nan if bad == "" else bad
    return items, lambda fmt: [f"column {col!r}", _where(fmt, i)]


@fuzz(50)
@given(case=broken_items(), fmt=st.sampled_from(["csv", "parquet"]))
@example(case=(ITEMS.assign(human_rt_sd=-1.0), lambda fmt: ["human_rt_sd"]), fmt="csv")
@example(case=(ITEMS.assign(n_human="1e300"), lambda fmt: ["n_human"]), fmt="csv")
@example(case=(ITEMS.assign(human_accuracy=2.0), lambda fmt: ["human_accuracy"]), fmt="csv")
def test_bad_items_files_are_refused_naming_the_cell(case, fmt):
    items, named = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = _write(items, folder, "items", fmt)
        traces = _write(TRACES, folder, "traces", "csv")
        refused(_behaviour(folder, path, traces, "--n-boot", "5"), folder, *named(fmt))


@st.composite
def broken_pairs(draw):
    """Text of a PAIRS.yaml that is wrong in shape, keys or names."""
    name = st.sampled_from(["teacher", "student", "baseline"])
    triple = st.fixed_dictionaries({"teacher": name, "student": name})
    return draw(
        st.one_of(
            st.sampled_from(
                [
                    "triples: [[teacher, student]]",
                    "triples: [{teacher: teacher, student: [a, b}]",
                    "triples: {teacher: teacher, student: student}",
                    "triples: []",
                    "triples: teacher",
                    "- teacher\n- student",
                    "tripels: [{teacher: teacher, student: student}]",
                    "triples: [{teacher: 1, student: student}]",
                    "triples: [{teacher: teacher, student: student, mentor: baseline}]",
                    "triples: [{teacher: teacher, student: nobody}]",
                    "triples: [{teacher: teacher}]",
                    "!!python/object/apply:os.system ['echo hacked']",
                    "triples: !!binary aGVsbG8=",
                    "42",
                    "'just text'",
                    "? [a, b]\n: c",
                    "\t- bad indent",
                ]
            ),
            st.builds(
                lambda t, key, value: f"triples: [{ {**t, key: value} }]".replace("'", ""),
                triple,
                UNICODE.filter(lambda k: k.isidentifier() and k not in ("teacher", "student")),
                name,
            ),
        )
    )


@fuzz(25)
@given(text=broken_pairs())
def test_bad_pairs_files_are_refused(text):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        items = _write(ITEMS, folder, "items", "csv")
        traces = _write(TRACES, folder, "traces", "csv")
        pairs = folder / "PAIRS.yaml"
        pairs.write_text(text, encoding="utf-8")
        refused(_behaviour(folder, items, traces, "--pairs", pairs), folder)


@pytest.mark.parametrize(
    "more, named",
    [
        (["--n-boot", "-5"], "--n-boot"),  # was: ValueError, negative dimensions
        (["--roles", "teacher"], "--roles"),
        (["--roles", "teacher=mentor"], "mentor"),
        (["--roles", "nobody=teacher", "--roles", "student=student"], "nobody"),
    ],
)
def test_bad_behaviour_options_are_refused(tmp_path, more, named):
    items = _write(ITEMS, tmp_path, "items", "csv")
    traces = _write(TRACES, tmp_path, "traces", "csv")
    refused(_behaviour(tmp_path, items, traces, *more), tmp_path, named)


@pytest.mark.parametrize(
    "content, suffix",
    [(b"", ".csv"), (b"\xff\xfe\x00junk", ".csv"), (b"not parquet", ".parquet"), (b"a,b", ".xlsx")],
)
def test_unreadable_files_are_refused_naming_the_file(tmp_path, content, suffix):
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(content)
    items = _write(ITEMS, tmp_path, "items", "csv")
    traces = _write(TRACES, tmp_path, "traces", "csv")
    refused(_behaviour(tmp_path, bad, traces), tmp_path, str(bad))
    refused(_behaviour(tmp_path, items, bad), tmp_path, str(bad))
    refused(_behaviour(tmp_path, items, tmp_path), tmp_path, str(tmp_path))  # a folder
    for pairs in (tmp_path / "nope.yaml", tmp_path):
        refused(_behaviour(tmp_path, items, traces, "--pairs", pairs), tmp_path, str(pairs))


NA_WORDS = {
    "NA",
    "N/A",
    "n/a",
    "NaN",
    "nan",
    "null",
    "NULL",
    "None",
    "<NA>",
    "#N/A",
    "-nan",
    "-NaN",
}
NA_WORDS |= {"1.#IND", "1.#QNAN", "#NA", "#N/A N/A", "-1.#IND", "-1.#QNAN", "NAN", "nil"}


@fuzz(20)
@given(
    ids=st.lists(
        UNICODE.filter(lambda s: s.strip() == s and s and s not in NA_WORDS),
        min_size=len(ITEMS),
        max_size=len(ITEMS),
        unique=True,
    ),
    flags=st.sampled_from([("True", "False"), ("true", "false"), ("1", "0"), ("yes", "no")]),
    fmt=st.sampled_from(["csv", "parquet"]),
)
def test_valid_tables_with_any_ids_and_flag_spellings_are_accepted(ids, flags, fmt):
    """The checks refuse what is wrong, not what is unusual: unicode ids, every boolean spelling."""
    from typer.testing import CliRunner

    from experiments.cli import app

    rename = dict(zip(ITEMS["item_id"], ids, strict=True))
    items = ITEMS.assign(item_id=ITEMS["item_id"].map(rename))
    traces = TRACES.assign(item_id=TRACES["item_id"].map(rename))
    for col in FLAGS:
        traces[col] = np.where(traces[col], *flags)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        args = _behaviour(
            folder, _write(items, folder, "items", fmt), _write(traces, folder, "traces", fmt)
        )
        result = CliRunner().invoke(app, [str(a) for a in [*args, "--n-boot", "5"]])
        assert result.exit_code == 0, result.output
        costs = pd.read_csv(folder / "out" / "item_costs.csv", keep_default_na=False)
        assert set(costs["item_id"]) == set(ids)
        expected = TRACES.assign(item_id=traces["item_id"]).groupby(["model", "item_id"])
        got = costs.set_index(["model", "item_id"])["accuracy"]
        assert np.allclose(got.sort_index(), expected["correct"].mean().sort_index())
