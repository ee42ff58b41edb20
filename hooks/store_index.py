"""The activation store's index on disk: a folder of parts, one per append (see ``hooks.store``).

Each part is written whole beside the folder, then renamed into it, so a reader of the folder
never meets a partial file. A part records, beside the index rows, the size and sha256 of the
shard it references (``store_format.CHECK_COLUMNS``); parts written before handan recorded them
read those as ``-1`` / ``""``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from experiments.errors import InputError, MissingInput
from hooks.atomic import atomic_write
from hooks.store_format import (
    CHECK_COLUMNS,
    INDEX,
    INDEX_COLUMNS,
    INDEX_PART,
    index_part_bytes,
    part_schema,
)

REPAIR = (
    "run `handan store repair {path}` (it drops what cannot be trusted; rerunning "
    "`handan record` then recomputes it)"
)
"""The fix every refusal of a damaged store names (format it with the store's path)."""


def parts(path: Path) -> list[Path]:
    """The index parts of the store at ``path``, in writing order."""
    index = path / INDEX
    return sorted(index.glob("part-*.parquet")) if index.is_dir() else []


def read_part(file: Path) -> pd.DataFrame:
    """One index part (or an older store's single index file) with every PART column; a file
    that is not readable parquet is refused, naming it."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(file, schema=part_schema())
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ... for a damaged file
        raise InputError(
            f"{file} is not a readable index part ({type(err).__name__}: {err}); "
            + REPAIR.format(path=file.parents[1] if file.parent.name == INDEX else file.parent)
        ) from err
    return _typed(table.to_pandas())


def read_index(path: Path) -> pd.DataFrame:
    """The whole index of the store at ``path`` (INDEX_COLUMNS and CHECK_COLUMNS): the folder of
    parts, or an older store's single file. A missing index is refused: a store's manifest is
    written after its index folder, so no killed run leaves a store without one."""
    import pyarrow.parquet as pq

    index = path / INDEX
    if index.is_file():
        return read_part(index)
    if not index.is_dir():
        raise MissingInput(
            f"{index} is missing (the store's manifest is there): restore it, or "
            + REPAIR.format(path=path)
        )
    try:
        return _typed(pq.read_table(index, schema=part_schema()).to_pandas())
    except Exception:  # name the damaged part: read them one by one
        for part in parts(path):
            read_part(part)
        raise


def _typed(read: pd.DataFrame) -> pd.DataFrame:
    read = read.assign(
        shard_bytes=read["shard_bytes"].fillna(-1), shard_sha256=read["shard_sha256"].fillna("")
    )
    return read.astype({**INDEX_COLUMNS, **CHECK_COLUMNS})


def write_part(store: Path, rows: pd.DataFrame, number: int) -> None:
    """Index part ``number`` of ``store`` (``rows`` with INDEX and CHECK columns): written whole
    beside the index folder, then renamed into it."""
    name = INDEX_PART.format(number)
    staged = store / f"{name}.staged"
    atomic_write(staged, index_part_bytes(rows))
    os.replace(staged, store / INDEX / name)
    if hasattr(os, "O_DIRECTORY"):  # make the rename durable
        fd = os.open(store / INDEX, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def drop_part(store: Path, part: Path) -> None:
    """Remove index part ``part`` of ``store``, then the shard it references: its (item, sample)
    pairs are no longer completed (a kill in between leaves an unreferenced shard, which the next
    writer or `handan store repair` removes). Call it holding the store's write lock."""
    shards = set(read_part(part)["shard"]) - {""}
    part.unlink()
    for shard in shards:
        (store / shard).unlink(missing_ok=True)
