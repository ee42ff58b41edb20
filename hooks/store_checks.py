"""What opening an activation store checks before any of its bytes are read as numbers.

``check_open`` (every open, reading or writing; a stat per shard and one listing of the shards
folder) refuses, in one line naming the file and `handan store repair`:

- a shard an index part references that is missing, or whose size differs from the size
  recorded when it was written (cut, or replaced);
- shards that no index part references, beyond the one an append killed between its shard and
  its index part leaves (the newest, numbered above every referenced shard: the next writer
  deletes it). More, or an older one, means index parts were lost (a missing or stale index):
  those shards are never deleted behind the user's back, only by `handan store repair`.

``check_shard`` compares a shard's sha256 with the recorded one; ``ActivationStore.load`` calls it
the first time it reads each shard, so an altered byte is refused, never read as a number. Shards
of stores written before sizes and checksums were recorded are checked against their own
safetensors header instead (the file is as long as the header says): a cut shard is refused, an
altered byte inside it cannot be seen.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from experiments.errors import InputError, MissingInput
from hooks.store_format import SHARD_DIR, SHARD_RE
from hooks.store_index import REPAIR


def on_disk(path: Path) -> list[str]:
    """The shards under ``path/shards`` (as index paths, ``shards/NAME``), temporary files aside.
    List them *before* reading the index: a shard an append writes meanwhile is then either in
    the index read after, or the one append in flight."""
    folder = path / SHARD_DIR
    names = [f.name for f in folder.iterdir()] if folder.is_dir() else []
    return sorted(f"{SHARD_DIR}/{n}" for n in names if not n.endswith(".tmp"))


def recorded(index: pd.DataFrame) -> dict[str, tuple[int, str]]:
    """Per referenced shard, (bytes, sha256) as its index part recorded them ((-1, "") when not)."""
    rows = index.loc[index["shard"] != "", ["shard", "shard_bytes", "shard_sha256"]]
    rows = rows.drop_duplicates("shard")
    return {
        str(s): (int(b), str(h))
        for s, b, h in zip(rows["shard"], rows["shard_bytes"], rows["shard_sha256"])
    }


def number(shard: str) -> int | None:
    match = SHARD_RE.match(Path(shard).name)
    return int(match.group(1)) if match else None


def in_flight(unreferenced: Iterable[str], referenced: Iterable[str]) -> str | None:
    """The one unreferenced shard a killed (or running) append may leave, if that is all there
    is: a single shard numbered above every referenced one. None otherwise (nothing, or more)."""
    extra = list(unreferenced)
    if len(extra) != 1 or number(extra[0]) is None:
        return None
    newest = max((number(s) or 0 for s in referenced), default=0)
    return extra[0] if number(extra[0]) > newest else None


def check_open(path: Path, shards: dict[str, tuple[int, str]], listed: list[str]) -> None:
    """Refuse a store whose referenced ``shards`` are missing or of another size, or whose
    shards folder (``listed`` before the index was read) holds shards no index part references
    beyond the one an interrupted append leaves."""
    for shard, (size, _) in shards.items():
        file = path / shard
        try:
            actual = file.stat().st_size
        except FileNotFoundError:
            raise MissingInput(
                f"{file} is missing (the index references it): " + REPAIR.format(path=path)
            ) from None
        if size >= 0 and actual != size:
            raise InputError(
                f"{file} has {actual} bytes, {size} were written (cut or replaced): "
                + REPAIR.format(path=path)
            )
    extra = [s for s in listed if s not in shards]
    if extra and in_flight(extra, shards) is None:
        raise InputError(
            f"{path / SHARD_DIR} holds {len(extra)} shard(s) no index part references "
            f"({', '.join(extra[:3])}{', …' if len(extra) > 3 else ''}): the index is missing "
            "parts or stale; restore them, or " + REPAIR.format(path=path)
        )


def sha256(file: Path) -> str:
    with open(file, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def header(file: Path) -> tuple[int, dict] | None:
    """(the size the safetensors header of ``file`` implies, its tensors), or None when the file
    has no readable header."""
    size = file.stat().st_size
    try:
        with open(file, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            head = json.loads(f.read(n)) if 8 + n <= size else None
    except (struct.error, ValueError):
        return None
    if not isinstance(head, dict):
        return None
    tensors = {k: v for k, v in head.items() if k != "__metadata__"}
    try:
        end = max((int(t["data_offsets"][1]) for t in tensors.values()), default=0)
    except (TypeError, KeyError, IndexError, ValueError):
        return None
    return 8 + n + end, tensors


def check_shard(path: Path, shard: str, expected: str) -> None:
    """Refuse ``path/shard`` when its sha256 is not ``expected``, or, with no sha256 recorded
    (``expected == ""``), when it is not as long as its safetensors header says."""
    file = path / shard
    if expected:
        if sha256(file) != expected:
            raise InputError(
                f"{file} does not match the sha256 recorded when it was written (altered): "
                + REPAIR.format(path=path)
            )
        return
    read = header(file)
    if read is None or read[0] != file.stat().st_size:
        raise InputError(
            f"{file} is not the safetensors file its header describes (cut or altered): "
            + REPAIR.format(path=path)
        )
