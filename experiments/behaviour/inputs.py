"""A traces table from a user's file (``handan behaviour --traces``): every column checked
against the Traces contract, errors naming the line (CSV; header = line 1) or row, the column and
the fix, before any statistic is computed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from experiments.contracts import TRACE_COLUMNS, validate_traces
from experiments.data.user_table import FALSE_WORDS, TRUE_WORDS, UserTable, read_user_table
from experiments.errors import InputError

#: a token count above this is no generation's (contexts hold far fewer): a corrupt value
MAX_TOKENS = 10**9
_NAMES = ("model", "item_id", "task")
_COUNTS = ("sample", "prompt_tokens", "reasoning_tokens", "answer_tokens")
_FLAGS = ("finished_thinking", "correct")
_TEXTS = ("response", "text")


def read_traces_file(path: str | Path) -> pd.DataFrame:
    """The traces table in ``path`` (.parquet / .csv / .tsv) with contract dtypes."""
    return check_traces_table(read_user_table(path, what="traces table"))


def _refuse(table: UserTable, bad: pd.Series, col: str, fix: str) -> None:
    if bad.any():
        i = int(bad.to_numpy().argmax())
        value = table.frame[col].iloc[i]
        shown = "an empty value" if pd.isna(value) else repr(value)
        raise InputError(f"{table.where(i)}, column {col!r}: {shown} {fix}")


def check_traces_table(table: UserTable) -> pd.DataFrame:
    """``table``'s frame checked column by column and returned with contract dtypes: names not
    empty, counts whole numbers in [0, MAX_TOKENS], flags boolean-like, texts may be empty."""
    frame = table.frame
    missing = [c for c in TRACE_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"{table.source} lacks column(s) {missing}; write traces with `handan generate` or "
            "`handan traces import`"
        )
    if len(frame) == 0:
        raise InputError(f"{table.source} has no traces (no rows under the header)")
    out = frame.reset_index(drop=True).copy()
    table = UserTable(out, table.source, table.word, table.offset)
    for col in _NAMES:
        empty = out[col].isna() | (out[col].astype(str).str.strip() == "")
        _refuse(table, empty, col, "is not a name; every trace needs its model, item_id and task")
        out[col] = out[col].astype(str)
    for col in _COUNTS:
        values = pd.to_numeric(out[col], errors="coerce").astype("float64")
        ok = np.isfinite(values) & (values >= 0) & (values <= MAX_TOKENS) & (values % 1 == 0)
        _refuse(table, ~ok, col, f"is not a count; give a whole number from 0 to {MAX_TOKENS}")
        out[col] = values.astype("int64")
    for col in _FLAGS:
        text = out[col].astype(str).str.strip().str.lower()
        known = out[col].notna() & text.isin(TRUE_WORDS | FALSE_WORDS)
        _refuse(table, ~known, col, "is not boolean-like; use true/false (or 1/0)")
        out[col] = text.isin(TRUE_WORDS)
    for col in _TEXTS:  # an empty cell of a CSV is an empty text
        out[col] = out[col].where(out[col].notna(), "").astype(str)
    twice = out.duplicated(["model", "item_id", "sample"], keep=False)
    if twice.any():
        first = out.loc[twice, ["model", "item_id", "sample"]].iloc[0]
        at = out.index[(out[["model", "item_id", "sample"]] == first).all(axis=1)]
        raise InputError(
            f"{table.source}: (model, item_id, sample) {tuple(first.tolist())} is on "
            f"{table.word}s {[i + table.offset for i in at[:5]]}; keep one trace per sample"
        )
    return validate_traces(out, source=table.source)
