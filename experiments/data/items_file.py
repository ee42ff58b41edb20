"""Bring-your-own human data: read a CSV / TSV / parquet file already in the Items contract
(e.g. the OSF item-level data of de Varda et al.) with errors that say where the problem is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from experiments.contracts import ITEM_REQUIRED, validate_items
from experiments.data.aggregate import valid_rt
from experiments.data.user_table import read_user_table
from experiments.errors import InputError

_NUMERIC = ("human_rt_s", "human_rt_sd", "human_accuracy", "n_human")
MAX_PEOPLE = 10**9  # more answers than any study's: a corrupt n_human


def load_items_file(path: str | Path) -> pd.DataFrame:
    """Read and validate a user Items file; return it with contract dtypes.

    Errors (ValueError) name the line (CSV; header = line 1) or row (parquet; first = row 1) and
    the column: missing required column or value, a non-numeric value in a numeric column,
    ``human_accuracy`` outside [0, 1], a negative or infinite ``human_rt_sd``, an ``n_human`` that
    is not a whole number from 0 to ``MAX_PEOPLE``, duplicate ``item_id``.
    ``human_rt_s`` may be empty (the item has no human time: it is generated and probed, and the
    behavioural analysis leaves it out and says so in ``exclusions.csv``); zero or negative is an
    error.
    """
    path = Path(path)
    read = read_user_table(path, what="Items file")
    table, where, offset = read.frame, read.word, read.offset
    missing = [c for c in ITEM_REQUIRED if c not in table.columns]
    if missing:
        raise InputError(
            f"{path} lacks required column(s) {missing}; an Items file needs "
            f"{list(ITEM_REQUIRED)} and, for human cost, human_rt_s (seconds)"
        )
    for col in ITEM_REQUIRED:
        empty = table[col].isna() | (table[col].astype(str).str.strip() == "")
        if empty.any():
            raise InputError(
                f"{path}, {where} {empty.idxmax() + offset}, column {col!r}: empty value; "
                "every item needs item_id, task, prompt and answer"
            )
    for col in [c for c in _NUMERIC if c in table.columns]:
        values = pd.to_numeric(table[col], errors="coerce")
        bad = values.isna() & table[col].notna()
        if bad.any():
            i = bad.idxmax()
            raise InputError(
                f"{path}, {where} {i + offset}, column {col!r}: {table[col][i]!r} is not a number"
            )
        table[col] = values.astype("float64")
    if "human_accuracy" in table.columns:
        bad = ~table["human_accuracy"].between(0, 1) & table["human_accuracy"].notna()
        if bad.any():
            raise InputError(
                f"{path}, {where} {bad.idxmax() + offset}, column 'human_accuracy': "
                f"{table['human_accuracy'][bad.idxmax()]} is outside [0, 1]; give a proportion"
            )
    if "human_rt_sd" in table.columns:
        sd = table["human_rt_sd"]
        bad = sd.notna() & ~(np.isfinite(sd) & (sd >= 0))
        if bad.any():
            raise InputError(
                f"{path}, {where} {bad.idxmax() + offset}, column 'human_rt_sd': {sd[bad.idxmax()]} "
                "is not a spread; give a non-negative SD of log seconds, or leave it empty"
            )
    if "n_human" in table.columns:
        n = table["n_human"]
        bad = n.notna() & ((n < 0) | (n % 1 != 0) | (n > MAX_PEOPLE))
        if bad.any():
            raise InputError(
                f"{path}, {where} {bad.idxmax() + offset}, column 'n_human': {n[bad.idxmax()]} "
                f"is not a count; give a whole number from 0 to {MAX_PEOPLE}"
            )
    for col in [
        c
        for c in table.columns
        if c.startswith("feat_") and not pd.api.types.is_numeric_dtype(table[c])
    ]:
        values = pd.to_numeric(table[col], errors="coerce")
        if not (values.isna() & table[col].notna()).any():  # an all-numeric feature becomes numbers
            table[col] = values
    dup = table["item_id"].duplicated(keep=False)
    if dup.any():
        first = table.loc[dup, "item_id"].iloc[0]
        at = [i + offset for i in table.index[table["item_id"] == first]]
        raise InputError(
            f"{path}: item_id {first!r} appears on {where}s {at}; item_id must be unique"
        )
    if "human_rt_s" in table.columns:
        bad = table["human_rt_s"].notna() & ~valid_rt(table["human_rt_s"])
        if bad.any():
            raise InputError(
                f"{path}, {where} {bad.idxmax() + offset}, column 'human_rt_s': "
                f"{table['human_rt_s'][bad.idxmax()]} is not a positive time in seconds; "
                "leave it empty where no human time is known"
            )
    return validate_items(table, source=str(path))
