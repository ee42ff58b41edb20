"""The traces file on disk: parquet written atomically, generation settings in its metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from experiments.contracts import TRACE_COLUMNS, write_parquet_atomic
from experiments.errors import SettingsMismatch

META_KEY = b"handan.generation"


def read_traces_meta(path: Path) -> dict | None:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[META_KEY]) if META_KEY in meta else None


def write_traces(table: pd.DataFrame, path: Path, meta: dict) -> None:
    """The traces table, atomically, with the run's generation settings in its metadata."""
    write_parquet_atomic(table, path, meta, meta_key=META_KEY)


def existing_traces(path: Path, meta: dict) -> pd.DataFrame:
    """Rows already written by an identical run; refuse a file from another model or config."""
    if not path.exists():
        return pd.DataFrame(columns=list(TRACE_COLUMNS))
    old = read_traces_meta(path)
    if old is None:
        raise SettingsMismatch(
            f"{path} exists and was not written by `handan generate`; choose another --out"
        )
    if old.get("model") != meta["model"]:
        raise SettingsMismatch(
            f"{path} holds traces of model {old.get('model')!r}, not {meta['model']!r}; "
            "choose another --out (one traces file per model) or delete it"
        )
    diff = sorted(k for k in meta if old.get(k) != meta[k])
    if diff:
        changes = ", ".join(f"{k}: {old.get(k)!r} → {meta[k]!r}" for k in diff)
        raise SettingsMismatch(
            f"{path} was written with other generation settings ({changes}); resuming would mix "
            "them. Rerun with the old settings, or write to another --out."
        )
    return pd.read_parquet(path)
