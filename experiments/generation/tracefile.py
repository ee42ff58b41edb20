"""The traces file on disk: one parquet file, its settings in the parquet metadata, and the token
ids beside the contract columns (``prompt_ids``, ``generated_ids``: list<int32>; ``finish_reason``:
``stop`` / ``length``), all readable with pyarrow alone.

While a run is going, each finished batch is one more part in ``OUT.parts/part-<time>.parquet``
(written atomically; nothing already written is rewritten, so an append costs the same at any run
size). When the run ends the parts are merged into ``OUT`` (one rewrite per run) and removed; a
killed run leaves its parts, which the next run (or :func:`read_traces`) reads with the file.

Metadata: the settings that change what is generated (compared before a file is resumed: a
mismatch is refused, naming the setting) and, under ``recorded``, what was only noted (engine
version, batch size, how tokens were counted). Beside it, under its own key, the file's
``FORMAT``: a file of another format (an older handan's, e.g. one sampled by the Gumbel sampler
before per-row inverse-CDF draws) is read but never resumed, since resuming would mix two
versions' generations in one file. A file or part that is not readable parquet is refused in one
line naming it, never skipped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from experiments.contracts import TRACE_COLUMNS
from experiments.errors import InputError, SettingsMismatch

META_KEY = b"handan.generation"
FORMAT_KEY = b"handan.traces_format"
FORMAT = "2"
"""Bump when what the same settings generate, or the file's columns, change."""
RECORDED = "recorded"  # metadata section that is noted, never compared
ID_COLUMNS = ("prompt_ids", "generated_ids", "finish_reason")
COLUMNS = (*TRACE_COLUMNS, *ID_COLUMNS)
KEY = ["item_id", "sample"]
_PART = "part-{:020d}.parquet"


def _schema(meta: dict | None = None):
    import pyarrow as pa

    kinds = {"string": pa.string(), "int64": pa.int64(), "bool": pa.bool_()}
    fields = [pa.field(c, kinds[t]) for c, t in TRACE_COLUMNS.items()]
    fields += [
        pa.field("prompt_ids", pa.list_(pa.int32())),
        pa.field("generated_ids", pa.list_(pa.int32())),
        pa.field("finish_reason", pa.string()),
    ]
    return pa.schema(fields, metadata=None if meta is None else {META_KEY: json.dumps(meta)})


def parts_dir(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".parts")


def _parts(path: Path) -> list[Path]:
    return sorted(parts_dir(path).glob("part-*.parquet"))


def _unreadable(file: Path, err: Exception) -> InputError:
    fix = (
        "delete that part and rerun (the batch is generated again)"
        if file.parent.name.endswith(".parts")
        else "restore it, or delete it and rerun (its traces are generated again; a store "
        "recorded with them must then be recorded again)"
    )
    return InputError(
        f"{file} is not a readable traces file ({type(err).__name__}: {err}); it was cut or "
        f"altered: {fix}"
    )


def _schema_meta(path: Path) -> dict[bytes, bytes] | None:
    """The parquet key-value metadata of the file at ``path`` (or of its first part when only
    parts exist); None when neither exists."""
    import pyarrow.parquet as pq

    files = ([Path(path)] if Path(path).exists() else []) + _parts(path)
    if not files:
        return None
    try:
        return pq.read_schema(files[0]).metadata or {}
    except Exception as err:  # pyarrow's ArrowInvalid / OSError for a damaged file
        raise _unreadable(files[0], err) from err


def read_traces_meta(path: Path) -> dict | None:
    """The metadata of the traces file at ``path`` (or of its first part when only parts exist);
    None when it was not written by handan."""
    meta = _schema_meta(path) or {}
    if META_KEY not in meta:
        return None
    try:
        return json.loads(meta[META_KEY])
    except ValueError as err:
        raise _unreadable(Path(path), err) from err


def read_traces(path: Path) -> pd.DataFrame:
    """The traces at ``path`` with the parts of a run still going or killed; a key written twice
    (a sample regenerated for its activations) keeps its latest row."""
    files = ([Path(path)] if Path(path).exists() else []) + _parts(path)
    if not files:
        return pd.DataFrame({c: pd.Series(dtype=TRACE_COLUMNS.get(c, "object")) for c in COLUMNS})
    table = pd.concat([_read(f) for f in files], ignore_index=True)
    missing = [c for c in TRACE_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(
            f"{files[0]} lacks the traces column(s) {missing}; write it with `handan generate` "
            "or `handan traces import`"
        )
    table = table.drop_duplicates(KEY, keep="last").reset_index(drop=True)
    return table.astype(TRACE_COLUMNS)


def _read(file: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(file)
    except Exception as err:  # pyarrow's ArrowInvalid / OSError for a damaged file
        raise _unreadable(file, err) from err


def write_traces(table: pd.DataFrame, path: Path, meta: dict) -> None:
    """The whole traces file at once, atomically (imports, merges, the end of a run)."""
    import pyarrow as pa

    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"traces for {path} lack column(s) {missing}")
    arrow = pa.Table.from_pandas(table[list(COLUMNS)], schema=_schema(), preserve_index=False)
    _write_arrow(arrow, Path(path), meta)


def _write_arrow(arrow, path: Path, meta: dict) -> None:
    import io

    import pyarrow.parquet as pq

    from hooks.atomic import atomic_write

    buffer = io.BytesIO()
    stamped = {META_KEY: json.dumps(meta), FORMAT_KEY: FORMAT}
    pq.write_table(arrow.replace_schema_metadata(stamped), buffer)
    atomic_write(path, buffer.getvalue())


def append_part(table: pd.DataFrame, path: Path, meta: dict) -> None:
    """One more part of a running file: ``table`` (one batch's rows), atomically."""
    import pyarrow as pa

    folder = parts_dir(path)
    folder.mkdir(parents=True, exist_ok=True)
    arrow = pa.Table.from_pandas(table[list(COLUMNS)], schema=_schema(), preserve_index=False)
    # named by the clock (sorting by name is writing order), so no append lists the folder
    _write_arrow(arrow, folder / _PART.format(time.time_ns()), meta)


def finish(path: Path, meta: dict) -> None:
    """Merge the parts into the file (one rewrite) and remove them; nothing to do without parts.
    Killed between the two steps, the next read finds the rows twice and keeps one."""
    parts = _parts(path)
    if not parts:
        return
    write_traces(read_traces(path), path, meta)
    for part in parts:
        part.unlink()
    folder = parts_dir(path)
    for tmp in folder.glob("*.tmp"):
        tmp.unlink()
    folder.rmdir()


def check_meta(path: Path, old: dict | None, meta: dict) -> None:
    """Refuse to resume ``path`` (metadata ``old``) under ``meta``, naming what differs."""
    if old is None:
        raise SettingsMismatch(f"{path} exists and was not written by handan; choose another --out")
    if old.get("model") != meta["model"]:
        raise SettingsMismatch(
            f"{path} holds traces of model {old.get('model')!r}, not {meta['model']!r}; "
            "choose another --out (one traces file per model) or delete it"
        )
    diff = sorted(k for k in meta if k != RECORDED and old.get(k) != meta[k])
    if diff:
        changes = ", ".join(f"{k}: {old.get(k)!r} → {meta[k]!r}" for k in diff)
        raise SettingsMismatch(
            f"{path} was written with other generation settings ({changes}); resuming would mix "
            "them. Rerun with the old settings, or write to another --out."
        )


def existing_traces(path: Path, meta: dict) -> pd.DataFrame:
    """Rows already written by an identical run (file and parts); refuse a file from another
    model or settings."""
    path = Path(path)
    if path.exists() or _parts(path):
        old = read_traces_meta(path)
        written = (_schema_meta(path) or {}).get(FORMAT_KEY, b"1").decode()
        if old is not None and written != FORMAT:
            raise SettingsMismatch(
                f"{path} was written by an older handan (traces format {written}, this handan "
                f"writes {FORMAT}); resuming would mix two versions' generations: write to "
                "another --out, or finish it with the handan that wrote it"
            )
        check_meta(path, old, meta)
    return read_traces(path)
