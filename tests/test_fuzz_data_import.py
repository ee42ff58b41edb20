"""Fuzzed bad input to `handan data import`: trial files with missing, empty or wrongly typed
cells, items that disagree with themselves, empty tables; mapping files of the wrong YAML shape,
with unknown keys, values of the wrong type, exclusive keys both or neither given and broken
templates. Each is refused in one line naming the column and line, or the key, and an Items table
already at --out is left byte-identical (tests/fuzzing.py)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from fuzzing import fuzz, refused
from hypothesis import example, given
from hypothesis import strategies as st
from typer.testing import CliRunner

from experiments.cli import app

MAPPING = {
    "item": ["a", "b"],
    "participant": "subject",
    "rt": "rt",
    "rt_unit": "ms",
    "response": "typed",
    "answer": "solution",
    "task_col": "block",
    "prompt_template": "What is {a} + {b}?",
    "feature": ["size"],
}


def _trials() -> pd.DataFrame:
    """6 additions x 4 participants, every column text as in a CSV."""
    rng = np.random.default_rng(0)
    rows = [
        {
            "subject": str(p + 1),
            "a": str(k + 1),
            "b": str(2 * k + 3),
            "block": "small" if k < 3 else "large",
            "size": str(len(str(3 * k + 4))),
            "solution": str(3 * k + 4),
            "typed": str(3 * k + 4 + (rng.random() < 0.2)),
            "rt": f"{np.exp(rng.normal(7.5, 0.3)):.1f}",
        }
        for k in range(6)
        for p in range(4)
    ]
    return pd.DataFrame(rows)


TRIALS = _trials()
UNICODE = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=10)
RUNNER = CliRunner()


@pytest.fixture(scope="module")
def existing(tmp_path_factory) -> Path:
    """A folder with the trial file, its mapping and a good import's Items table + exclusions."""
    folder = tmp_path_factory.mktemp("imported")
    TRIALS.to_csv(folder / "trials.csv", index=False)
    (folder / "mapping.yaml").write_text(yaml.safe_dump(MAPPING))
    result = RUNNER.invoke(app, [str(a) for a in _import(folder, folder / "trials.csv")])
    assert result.exit_code == 0, result.output
    return folder


def _import(folder: Path, trials: Path, mapping: Path | None = None, *more) -> list:
    return ["data", "import", trials, "--mapping", mapping or folder / "mapping.yaml",
            "--out", folder / "items.csv", *more]  # fmt: skip


def _copy(existing: Path, tmp: str) -> Path:
    folder = Path(tmp) / "study"
    shutil.copytree(existing, folder)
    return folder


@st.composite
def broken_trials(draw):
    """(trial table, texts the error must name)."""
    trials = TRIALS.copy()
    kind = draw(st.sampled_from(["drop", "empty_cell", "rt", "empty", "task", "feature"]))
    if kind == "drop":
        col = draw(
            st.sampled_from(["subject", "a", "b", "block", "size", "solution", "typed", "rt"])
        )
        return trials.drop(columns=col), [repr(col)]
    if kind == "empty":
        return trials.iloc[:0], ["no trials"]
    i = draw(st.integers(0, len(trials) - 1))
    if kind == "empty_cell":
        col = draw(st.sampled_from(["subject", "a", "b", "block", "solution"]))
        trials.loc[i, col] = draw(st.sampled_from([np.nan, " ", "\t"]))
        return trials, [repr(col), f"line {i + 2}"]
    if kind == "rt":
        trials.loc[i, "rt"] = draw(
            st.one_of(
                st.sampled_from(["abc", "0", "-1", "inf", "-inf", "1e400", "1,5", "☃", "--3"]),
                st.floats(max_value=0).map(repr),
            )
        )
        return trials, ["'rt'", f"line {i + 2}"]
    item = trials.loc[i, ["a", "b"]]
    rows = (trials["a"] == item["a"]) & (trials["b"] == item["b"])
    j = trials.index[rows][draw(st.integers(1, int(rows.sum()) - 1))]
    col = "block" if kind == "task" else "size"
    trials.loc[j, col] = trials.loc[j, col] + draw(UNICODE.filter(lambda s: s.strip()))
    return trials, ["differs within item", f"{item['a']}|{item['b']}"]


@fuzz(50)
@given(case=broken_trials(), fmt=st.sampled_from(["csv", "parquet"]))
def test_bad_trial_files_are_refused_naming_the_cell(existing, case, fmt):
    trials, named = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = _copy(existing, tmp)
        path = folder / f"bad.{fmt}"
        if fmt == "parquet":
            trials.to_parquet(path, index=False)
            named = [n.replace(f"line {n[5:]}", f"row {int(n[5:]) - 1}") if n.startswith("line ")
                     else n for n in named]  # fmt: skip
        else:
            trials.to_csv(path, index=False)
        refused(_import(folder, path), folder, *named)


#: mappings whose values have the wrong shape or type, by key
WRONG_VALUES = st.sampled_from(
    [
        ("rt", 5),
        ("rt", ["rt", "rt2"]),
        ("rt", {"col": "rt"}),
        ("participant", None),
        ("item", []),
        ("item", [1, 2]),
        ("item", {"a": 1}),
        ("rt_unit", "min"),
        ("rt_unit", "MS"),
        ("rt_unit", 1000),
        ("feature", {"size": 1}),
        ("prompt_from", "last"),
        ("prompt_template", "What is it?"),  # names no column
        ("prompt_template", "What is {a + {b}?"),
        ("prompt_template", "What is {a} + {b}}?"),
        ("prompt_template", "{a:{b}}"),
        ("prompt_template", "{a!x}"),
        ("prompt_template", "{a:d}"),
        ("prompt_template", "{a.real}"),
        ("prompt_template", "{0}"),
        ("prompt_template", "{}"),
        ("prompt_template", "{a[0]}"),
        ("task_col", True),
    ]
)


@st.composite
def broken_mappings(draw):
    """(YAML text of a --mapping file, texts the error must name)."""
    kind = draw(st.sampled_from(["shape", "unknown", "value", "exclusive", "missing"]))
    mapping = dict(MAPPING)
    if kind == "shape":
        text = draw(
            st.sampled_from(
                [
                    "- a\n- b",
                    "42",
                    "'rt: rt'",
                    "rt: [unclosed",
                    "!!python/object/apply:os.system [ls]",
                    "? [a]\n: b",
                    "rt: rt\nrt: rt2\n\t- x",
                    "{1: rt}",
                ]  # fmt: skip
            )
        )
        return text, ["mapping.yaml"]
    if kind == "unknown":
        key = draw(UNICODE.filter(lambda k: k.strip() and k not in MAPPING and k.isprintable()))
        mapping[key] = "rt"
        named = []  # pydantic names it; its repr may escape characters
    elif kind == "value":
        key, value = draw(WRONG_VALUES)
        mapping[key] = value
        named = [key]
    elif kind == "exclusive":
        pair = draw(st.sampled_from([("response", "correct"), ("task_col", "task"),
                                     ("prompt_template", "prompt"), ("answer", "answer_template")]))  # fmt: skip
        if draw(st.booleans()):
            mapping[pair[1]] = "solution"  # both
        else:
            mapping.pop(pair[0])  # neither
        named = [pair[0]]
    else:
        key = draw(st.sampled_from(["item", "participant", "rt", "rt_unit"]))
        mapping.pop(key)
        named = [key]
    return yaml.safe_dump(mapping, allow_unicode=True), named


@fuzz(50)
@given(case=broken_mappings())
@example(case=(yaml.safe_dump({**MAPPING, "prompt_template": "{a:{b}}"}), ["prompt_template"]))
@example(case=(yaml.safe_dump({**MAPPING, "prompt_template": "{a!x}"}), ["prompt_template"]))
@example(case=("rt: [unclosed", ["mapping.yaml"]))  # was: a YAML traceback
def test_bad_mapping_files_are_refused_naming_the_key(existing, case):
    text, named = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = _copy(existing, tmp)
        (folder / "mapping.yaml").write_text(text, encoding="utf-8")
        refused(_import(folder, folder / "trials.csv"), folder, *named)


@pytest.mark.parametrize(
    "more, named",
    [
        (["--rt-unit", "minutes"], "rt_unit"),
        (["--prompt-from", "last"], "prompt_from"),
        (["--rt", "nope"], "nope"),
        (["--item", "a", "--item", "☃"], "☃"),
        (["--out", "items.txt"], "--out"),
        (["--correct", "typed"], "correct"),  # with --response from the mapping: both given
    ],
)
def test_bad_import_options_are_refused(existing, tmp_path, more, named):
    folder = _copy(existing, str(tmp_path))
    refused(_import(folder, folder / "trials.csv", None, *more), folder, named)


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00,,", b"a,b\n1,2,3,4\n"])
def test_unreadable_trial_files_are_refused(existing, tmp_path, content):
    folder = _copy(existing, str(tmp_path))
    (folder / "bad.csv").write_bytes(content)
    refused(_import(folder, folder / "bad.csv"), folder, "bad.csv")


def test_a_missing_or_folder_mapping_is_refused_naming_it(existing, tmp_path):
    folder = _copy(existing, str(tmp_path))
    for mapping in (folder / "nope.yaml", folder):
        refused(_import(folder, folder / "trials.csv", mapping), folder, str(mapping))
