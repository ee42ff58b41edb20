"""The activation store's file format: file names, manifest keys, index columns, dtypes, the
write lock and the refusal of a manifest written under other settings (see ``hooks.store``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.errors import InputError, SettingsMismatch

MANIFEST = "manifest.json"
INDEX = "index.parquet"  # a folder of parts (a parquet dataset); a single file in older stores
INDEX_PART = "part-{:06d}.parquet"
INDEX_PART_RE = re.compile(r"^part-(\d{6,})\.parquet$")
SHARD_DIR = "shards"
LOCK = "write.lock"
MATCH_KEYS = ("model", "config_hash", "sites", "positions", "dtype", "d_model", "widths")
"""Manifest keys that must agree before a run may append to an existing store."""
REQUIRED_KEYS = ("model", "config_hash", "sites", "positions", "dtype", "d_model")
DTYPES = ("float32", "float16", "bfloat16")
INDEX_COLUMNS = {
    "model": "str",
    "item_id": "str",
    "sample": "int64",
    "site": "str",
    "position": "str",
    "token_index": "int64",
    "shard": "str",
    "row": "int64",
}
ROW_COLUMNS = ("model", "item_id", "sample", "site", "position", "token_index")
CHECK_COLUMNS = {"shard_bytes": "int64", "shard_sha256": "str"}
"""What an index part records of the shard it references, computed from the bytes written:
its size and sha256 (-1 / "" on absent rows, and null in parts of stores written before
handan recorded them). Kept on disk only; ``ActivationStore.index`` has the INDEX_COLUMNS."""
PART_COLUMNS = {**INDEX_COLUMNS, **CHECK_COLUMNS}
SHARD_RE = re.compile(r"^shard-(\d{6,})\.safetensors$")


def handan_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("handan")
    except PackageNotFoundError:
        return "unknown"


def normalise_dtype(dtype: Any) -> str:
    """The store's name of a dtype (``bf16``, ``torch.bfloat16`` → ``bfloat16``); others fail."""
    name = str(dtype).removeprefix("torch.")
    name = {
        "fp32": "float32",
        "fp16": "float16",
        "bf16": "bfloat16",
        "half": "float16",
        "float": "float32",
    }.get(name, name)
    if name not in DTYPES:
        raise InputError(f"unsupported store dtype {dtype!r}; use one of {DTYPES}")
    return name


def write_lock(path: Path) -> Any:
    """An exclusive, non-blocking ``flock`` on ``path/write.lock`` (POSIX; elsewhere no lock)."""
    handle = open(path / LOCK, "a")  # held until the store is closed
    try:
        import fcntl
    except ImportError:
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SettingsMismatch(
            f"another process is writing to {path} (it holds {path / LOCK}); wait "
            "for it to finish, or write to another --out folder"
        ) from None
    return handle


def refuse_mismatch(path: Path, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """SettingsMismatch naming what differs between a store's manifest and a run's, if anything does."""
    differ = [k for k in MATCH_KEYS if old.get(k) != new.get(k)]
    if not differ:
        return
    details = [
        f"{k}: store has {old.get(k)!r}, run has {new.get(k)!r}"
        for k in differ
        if k != "config_hash"
    ]
    if "config_hash" in differ:  # name the settings behind the hash where both manifests keep them
        changed = []
        for section in ("generation", "prompt_format", "weights", "capture"):
            was, now = old.get(section) or {}, new.get(section) or {}
            changed += [
                f"{section}.{key}: store has {was.get(key)!r}, run has {now.get(key)!r}"
                for key in sorted(was.keys() | now.keys())
                if was.get(key) != now.get(key)
            ]
        if changed or not details:
            details += changed or [
                f"config_hash: store has {old.get('config_hash')!r}, run has {new['config_hash']!r}"
            ]
    raise SettingsMismatch(
        f"{path} was written with a different configuration ({'; '.join(details)}); rerun "
        "with the store's settings to resume it, or use another --out folder"
    )


def read_manifest(path: Path) -> dict[str, Any]:
    """``path/manifest.json`` as a dict; a file that is not a JSON object with the required keys
    is refused in one line naming it and the fix."""
    import json

    file = path / MANIFEST
    try:
        manifest = json.loads(file.read_bytes())
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        problem = f"is not valid JSON ({err})"
    else:
        if not isinstance(manifest, dict):
            problem = "is not a JSON object"
        elif lacks := [k for k in REQUIRED_KEYS if k not in manifest]:
            problem = f"lacks {lacks}"
        else:
            return manifest
    raise InputError(
        f"{file} {problem}: the store's settings are lost; restore the file, or delete {path} "
        "and rerun `handan record` (it recomputes everything)"
    )


def empty_index(columns: Mapping[str, str] = INDEX_COLUMNS) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


def part_schema():
    """The pyarrow schema of an index part (what every part is read with: older parts lacking
    CHECK_COLUMNS read them as null)."""
    import pyarrow as pa

    kinds = {"str": pa.string(), "int64": pa.int64()}
    return pa.schema([pa.field(c, kinds[t]) for c, t in PART_COLUMNS.items()])


def index_part_bytes(rows: pd.DataFrame) -> bytes:
    """One index part (INDEX_COLUMNS and CHECK_COLUMNS) as parquet bytes, with the one schema
    every part shares."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(
        rows[list(PART_COLUMNS)], schema=part_schema(), preserve_index=False
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()
