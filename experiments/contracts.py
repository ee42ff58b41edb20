"""The tables that stages hand each other (see README, "File contracts").

Each validator returns a clean copy or raises ValueError naming the problem and the fix.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.errors import InputError, MissingInput


def stable_hash(obj: Any) -> str:
    """16 hex digits of the sha256 of ``obj`` as sorted-key JSON (``str`` for what JSON lacks): the
    one hash of settings behind store config hashes and pipeline stage reuse."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


#: Items table, one row per item. ``human_rt_s``: the item's human time in seconds, one scale for
#: every trial-level dataset and ``handan data import``: the geometric mean of the correct-trial
#: RTs kept by the log-RT trimming, ``exp(mean of kept log RTs)`` (experiments.data.aggregate says
#: why), so the behaviour's human cost ``log(human_rt_s)`` is the mean kept log RT; may be missing
#: (an item without a usable correct RT). ``human_rt_sd``: SD of the kept log RTs (log seconds).
#: ``human_accuracy``: correct / answered trials (0-1); ``n_human``: answered trials. game24 is the
#: exception: its ``human_rt_s`` is the published arithmetic mean solve time (no trials exist) and
#: its ``human_rt_sd`` is missing. Optional ``feat_*``: item features (probe baselines).
ITEM_COLUMNS = {
    "item_id": "string",
    "task": "string",
    "prompt": "string",
    "answer": "string",
    "human_rt_s": "float64",
    "human_rt_sd": "float64",
    "human_accuracy": "float64",
    "n_human": "Int64",
}
ITEM_REQUIRED = ("item_id", "task", "prompt", "answer")

TRACE_COLUMNS = {
    "model": "string",
    "item_id": "string",
    "task": "string",
    "sample": "int64",
    "prompt_tokens": "int64",
    "reasoning_tokens": "int64",
    "answer_tokens": "int64",
    "finished_thinking": "bool",
    "response": "string",
    "correct": "bool",
    "text": "string",
}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a parquet or CSV table; the error says which formats are accepted."""
    path = Path(path)
    if not path.exists():
        raise MissingInput(f"{path} does not exist; pass the path of a .parquet or .csv file")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix in {".csv", ".tsv"}:
        return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")
    raise InputError(f"{path}: unknown table format {path.suffix!r}; use .parquet, .csv or .tsv")


def write_parquet_atomic(
    df: pd.DataFrame, path: Path, meta: dict | None = None, *, meta_key: bytes = b"handan"
) -> None:
    """Write ``df`` to ``path`` through a temporary file and a rename (a reader never sees half);
    ``meta`` goes as JSON into the parquet metadata under ``meta_key``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hooks.atomic import atomic_write

    table = pa.Table.from_pandas(df, preserve_index=False)
    if meta is not None:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), meta_key: json.dumps(meta)}
        )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    atomic_write(Path(path), buffer.getvalue())


def validate_items(items: pd.DataFrame, *, source: str = "items table") -> pd.DataFrame:
    """Check an Items table against the contract and return it with contract dtypes."""
    if len(items) == 0:
        raise InputError(
            f"{source} is empty; it needs at least one row with item_id, task, prompt, answer"
        )
    missing = [c for c in ITEM_REQUIRED if c not in items.columns]
    if missing:
        raise InputError(
            f"{source} lacks required column(s) {missing}; an Items table needs "
            f"{list(ITEM_REQUIRED)} (optional: human_rt_s, human_rt_sd, human_accuracy, n_human, feat_*)"
        )
    items = items.copy()
    for col, dtype in ITEM_COLUMNS.items():
        if col not in items.columns:
            items[col] = pd.Series(
                pd.NA, index=items.index, dtype="Float64" if dtype == "float64" else dtype
            )
        items[col] = items[col].astype(dtype)
    dup = items["item_id"][items["item_id"].duplicated()].unique().tolist()
    if dup:
        raise InputError(f"{source} has duplicate item_id values {dup[:5]}; item_id must be unique")
    empty = items["prompt"].isna() | (items["prompt"].str.len() == 0)
    if empty.any():
        bad = items.loc[empty, "item_id"].tolist()[:5]
        raise InputError(f"{source}: items {bad} have an empty prompt")
    return items


def validate_traces(traces: pd.DataFrame, *, source: str = "traces table") -> pd.DataFrame:
    """Check a Traces table against the contract and return it with contract dtypes."""
    missing = [c for c in TRACE_COLUMNS if c not in traces.columns]
    if missing:
        raise InputError(f"{source} lacks column(s) {missing}; write it with `handan generate`")
    traces = traces.copy()
    for col, dtype in TRACE_COLUMNS.items():
        traces[col] = traces[col].astype(dtype)
    key = traces[["model", "item_id", "sample"]]
    if key.duplicated().any():
        raise InputError(f"{source} has duplicate (model, item_id, sample) rows")
    return traces
