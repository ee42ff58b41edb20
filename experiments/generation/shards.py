"""Data parallelism across jobs: ``--shard I/N`` takes a fixed, content-free share of the items
(all samples of an item stay together) and writes its own files; ``handan merge`` joins them.

An item belongs to shard ``1 + sha1(item_id) mod N`` (shards are numbered 1..N), so the split
does not depend on the order of the Items table or on which other items it holds.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from experiments.errors import InputError

Shard = tuple[int, int]
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str | None) -> Shard | None:
    """``"2/4"`` → ``(2, 4)``; None stays None; anything else fails naming the form."""
    if text is None:
        return None
    m = _SHARD.match(text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise InputError(f"--shard {text!r}: give I/N with 1 <= I <= N, e.g. --shard 2/4")
    return int(m.group(1)), int(m.group(2))


def shard_of(item_id: str, n: int) -> int:
    return 1 + int(hashlib.sha1(item_id.encode()).hexdigest(), 16) % n


def in_shard(item_id: str, shard: Shard | None) -> bool:
    return shard is None or shard_of(item_id, shard[1]) == shard[0]


def shard_label(shard: Shard | None) -> str | None:
    return None if shard is None else f"{shard[0]}/{shard[1]}"


def shard_path(path: str | Path, shard: Shard | None) -> Path:
    """Where shard ``I/N`` of ``path`` goes: ``traces.parquet`` → ``traces.shard-2-of-4.parquet``,
    a store folder ``store`` → ``store.shard-2-of-4``; ``path`` itself without a shard."""
    path = Path(path)
    if shard is None:
        return path
    tag = f"shard-{shard[0]}-of-{shard[1]}"
    return path.with_name(
        f"{path.stem}.{tag}{path.suffix}" if path.suffix else f"{path.name}.{tag}"
    )
