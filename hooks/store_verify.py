"""`handan store verify` and `handan store repair`: every shard of an activation store against
what was recorded when it was written, and the removal of what cannot be trusted.

``verify`` reads each index part on its own and checks every shard it references: the file
exists, has the recorded size and the recorded sha256 (``hooks.store_checks``); a part that is not
readable parquet, a part repeating (item, sample) pairs of an earlier part, and shards no part
references are problems too. Shards of stores written before checksums were recorded are checked
against their own safetensors header (the file is as long as the header says, and holds each
site's tensor with the rows the index uses), and reported as having no checksums recorded.

``repair`` removes the index parts with a problem (their (item, sample) pairs are then not
completed, so rerunning `handan record` with the same settings recomputes them), then every
shard no remaining part references, and temporary files. It holds the store's write lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from experiments.errors import InputError
from hooks.store_checks import header, on_disk, recorded, sha256
from hooks.store_format import (
    INDEX,
    PART_COLUMNS,
    SHARD_DIR,
    empty_index,
    read_manifest,
    write_lock,
)
from hooks.store_index import parts, read_part, write_part

_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}


@dataclass
class Report:
    """What ``verify`` found: one entry per problem ("FILE what"), the parts and shards they
    condemn; ``lines()`` adds the fix to each."""

    path: Path
    problems: list[str] = field(default_factory=list)
    bad_parts: dict[Path, int] = field(default_factory=dict)  # part → its pairs (-1: unreadable)
    bad_shards: set[str] = field(default_factory=set)
    unchecked: set[str] = field(default_factory=set)  # shards with no checksum recorded
    n_parts: int = 0
    n_shards: int = 0

    def problem(self, file: Path, what: str) -> None:
        self.problems.append(f"{file} {what}")

    def lines(self) -> list[str]:
        return [f"{p}: run `handan store repair {self.path}`" for p in self.problems]


def verify(path: str | Path) -> Report:
    """Check every index part and shard of the store at ``path`` (see the module docstring)."""
    path = Path(path)
    manifest = read_manifest(path)  # a store without its settings cannot be checked: refused
    report = Report(path)
    listed = on_disk(path)
    index = path / INDEX
    files = [index] if index.is_file() else parts(path)
    if not index.exists():
        report.problem(index, "is missing")
    seen: dict[tuple[str, int], Path] = {}
    checked: dict[str, str | None] = {}  # shard → its problem (None: fine)
    referenced: set[str] = set()
    for part in files:
        report.n_parts += 1
        try:
            rows = read_part(part)
        except InputError:
            report.problem(part, "is not readable parquet")
            report.bad_parts[part] = -1
            continue
        pairs = set(zip(rows["item_id"].astype(str), rows["sample"].astype(int)))
        again = sorted(k for k in pairs if k in seen)
        if again:
            report.problem(part, f"repeats (item_id, sample) {again[:3]} of {seen[again[0]]}")
            report.bad_parts[part] = len(pairs)
            continue
        seen.update(dict.fromkeys(pairs, part))
        for shard, (size, digest) in recorded(rows).items():
            referenced.add(shard)
            if shard not in checked:
                checked[shard] = _shard_problem(path, shard, size, digest, rows, manifest)
                report.n_shards += 1
                if not digest:
                    report.unchecked.add(shard)
            if checked[shard] is not None:
                report.problem(path / shard, checked[shard])
                report.bad_parts[part] = len(pairs)
                report.bad_shards.add(shard)
    for shard in sorted(set(listed) - referenced):
        report.problem(path / shard, "is referenced by no index part")
        report.bad_shards.add(shard)
    return report


def _shard_problem(path, shard, size, digest, rows, manifest) -> str | None:
    file = path / shard
    if not file.is_file():
        return "is missing (the index references it)"
    actual = file.stat().st_size
    if size >= 0 and actual != size:
        return f"has {actual} bytes, {size} were written (cut or replaced)"
    if digest:
        return None if sha256(file) == digest else "does not match the sha256 recorded at write"
    return _header_problem(file, actual, rows[rows["shard"] == shard], manifest)


def _header_problem(file: Path, size: int, rows: pd.DataFrame, manifest: dict) -> str | None:
    """What is wrong with a shard that has no checksum, judged by its safetensors header."""
    read = header(file)
    if read is None:
        return "has no readable safetensors header (cut or altered)"
    if read[0] != size:
        return f"has {size} bytes, its header says {read[0]} (cut or altered)"
    tensors, widths = read[1], manifest.get("widths", {})
    for site, used in rows.groupby("site")["row"].max().items():
        t = tensors.get(site, {})
        want = [int(used) + 1, int(widths.get(site, manifest["d_model"]))]
        shape = list(t.get("shape", [0, 0]))
        if t.get("dtype") != _DTYPES.get(manifest["dtype"]) or shape[0] < want[0]:
            return f"lacks the {site} rows the index uses (a stale index?)"
        if shape[1:] != want[1:]:
            return f"holds {site} vectors {shape[1:]} wide, the store's are {want[1]}"
    return None


def repair(path: str | Path) -> dict:
    """Remove what ``verify`` finds untrustworthy; returns what was removed (see the module
    docstring). Refuses an older store's single index file (it cannot drop one batch of it)."""
    path = Path(path)
    read_manifest(path)
    if (path / INDEX).is_file():
        raise InputError(
            f"{path / INDEX} is one file (a store of an older handan): repair handles a folder "
            "of index parts only; record into another --out folder"
        )
    lock = write_lock(path)
    try:
        report = verify(path)
        if not (path / INDEX).exists():
            (path / INDEX).mkdir()
            write_part(path, empty_index(PART_COLUMNS), 0)
        for part in report.bad_parts:  # first the parts: their pairs are no longer completed
            part.unlink()
        kept = set()
        for part in parts(path):
            kept |= set(recorded(read_part(part)))
        shards = sorted(set(on_disk(path)) - kept)
        for shard in shards:
            (path / shard).unlink()
        for tmp in [*path.glob("*.tmp"), *path.glob("*.staged"), *(path / SHARD_DIR).glob("*.tmp")]:
            tmp.unlink()
    finally:
        lock.close()
    pairs = list(report.bad_parts.values())
    return dict(
        problems=report.problems,
        parts=[p.name for p in report.bad_parts],
        pairs=None if -1 in pairs else sum(pairs),
        shards=shards,
    )
