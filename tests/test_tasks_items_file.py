"""User Items files: valid files load, bad ones fail with line and column."""

from __future__ import annotations

import pandas as pd
import pytest

from experiments.data import load_items_file

HEADER = "item_id,task,prompt,answer,human_rt_s,human_accuracy,n_human,feat_len\n"


def _write(tmp_path, body: str, name: str = "items.csv"):
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


def test_valid_csv_loads_with_contract_dtypes(tmp_path):
    items = load_items_file(
        _write(tmp_path, "a,t,What is 2+2?,4,1.5,0.9,10,3\nb,t,Say hi,hi,2.5,1.0,8,2\n")
    )
    assert list(items["item_id"]) == ["a", "b"]
    assert items["human_rt_s"].tolist() == [1.5, 2.5]
    assert str(items["n_human"].dtype) == "Int64" and items["feat_len"].tolist() == [3, 2]


def test_malformed_row_names_the_line(tmp_path):
    path = _write(tmp_path, "a,t,p,4,1.5,0.9,10,3\nb,t,p,4,1.5,0.9,10,3,extra\n")
    with pytest.raises(ValueError, match="line 3"):
        load_items_file(path)


def test_non_numeric_value_names_line_and_column(tmp_path):
    path = _write(tmp_path, "a,t,p,4,1.5,0.9,10,3\nb,t,p,4,slow,0.9,10,3\n")
    with pytest.raises(ValueError, match=r"line 3, column 'human_rt_s': 'slow' is not a number"):
        load_items_file(path)


def test_empty_required_value_names_line_and_column(tmp_path):
    path = _write(tmp_path, "a,t,p,4,1.5,0.9,10,3\nb,t,,4,1.5,0.9,10,3\n")
    with pytest.raises(ValueError, match=r"line 3, column 'prompt'"):
        load_items_file(path)


def test_accuracy_outside_unit_interval(tmp_path):
    with pytest.raises(ValueError, match=r"line 2, column 'human_accuracy'"):
        load_items_file(_write(tmp_path, "a,t,p,4,1.5,90,10,3\n"))


def test_duplicate_item_id_names_both_lines(tmp_path):
    path = _write(tmp_path, "a,t,p,4,1.5,0.9,10,3\nb,t,p,4,1.5,0.9,10,3\na,t,q,5,1.5,0.9,10,3\n")
    with pytest.raises(ValueError, match=r"item_id 'a' appears on lines \[2, 4\]"):
        load_items_file(path)


def test_missing_rt_is_kept_and_non_positive_rt_refused(tmp_path):
    items = load_items_file(_write(tmp_path, "a,t,p,4,1.5,0.9,10,3\nb,t,p,4,,0.9,10,3\n"))
    assert list(items["item_id"]) == ["a", "b"] and items["human_rt_s"].isna().tolist() == [
        False,
        True,
    ]
    for rt in ("0", "-2"):
        with pytest.raises(
            ValueError, match=r"line 3, column 'human_rt_s': .* not a positive time"
        ):
            load_items_file(_write(tmp_path, f"a,t,p,4,1.5,0.9,10,3\nb,t,p,4,{rt},0.9,10,3\n"))


def test_parquet_and_missing_columns(tmp_path):
    frame = pd.DataFrame(
        {"item_id": ["x"], "task": ["t"], "prompt": ["p"], "answer": ["a"], "human_rt_s": [1.0]}
    )
    frame.to_parquet(tmp_path / "ok.parquet")
    assert load_items_file(tmp_path / "ok.parquet")["human_rt_s"].tolist() == [1.0]
    frame.drop(columns="answer").to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match=r"lacks required column\(s\) \['answer'\]"):
        load_items_file(tmp_path / "bad.parquet")


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_items_file(tmp_path / "nope.csv")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="unknown table format"):
        load_items_file(tmp_path / "x.json")
