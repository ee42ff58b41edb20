"""Merge the activation stores of ``--shard I/N`` jobs into one store.

The stores must agree on every manifest key a resume compares (model, config hash, sites,
positions, dtype, d_model); their ``shard`` labels must be 1..N of one N, none missing or
repeated, and no (item, sample) may be in two of them. Each input's batches are re-appended to
the new store (one append per input shard file), so the result is an ordinary store. Every input
shard is checked against its recorded sha256 before anything is written (a damaged input is
refused, never given a fresh checksum in the merged store).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from experiments.errors import InputError, SettingsMismatch
from hooks.store import ActivationStore
from hooks.store_checks import check_shard, recorded
from hooks.store_format import ROW_COLUMNS, refuse_mismatch
from hooks.store_index import read_index


def merge_stores(
    inputs: Sequence[str | Path], out: str | Path, check_shards=None
) -> ActivationStore:
    """One store at ``out`` (which must not exist) from the stores ``inputs``.
    ``check_shards(labels, names)`` validates the inputs' shard labels (the CLI passes the same
    check as for traces files)."""
    from safetensors.torch import load_file

    out = Path(out)
    if out.exists():
        raise SettingsMismatch(f"{out} exists; merge into a new folder")
    stores = [ActivationStore(p) for p in inputs]
    first = stores[0].manifest
    for store in stores[1:]:
        refuse_mismatch(store.path, first, {k: store.manifest.get(k) for k in first})
    if check_shards is not None:
        check_shards([s.manifest.get("shard") for s in stores], [str(s.path) for s in stores])
    seen: dict[tuple[str, int], Path] = {}
    for store in stores:
        for key in store.completed():
            if key in seen:
                raise InputError(
                    f"(item_id, sample) {key} is in both {seen[key]} and {store.path}; "
                    "shards are disjoint"
                )
            seen[key] = store.path
    for store in stores:  # before anything is written: a damaged input leaves no half merge
        for shard, (_, digest) in recorded(read_index(store.path)).items():
            check_shard(store.path, shard, digest)
    manifest = {k: v for k, v in first.items() if k not in ("handan_version", "created")}
    manifest.update(shard=None, merged_from=[s.manifest.get("shard") for s in stores])
    with ActivationStore.create_or_open(out, manifest) as merged:
        for store in stores:
            index = store.index
            keys = index[["item_id", "sample"]].apply(tuple, axis=1)
            present = index[index["shard"] != ""]
            home = dict(zip(present[["item_id", "sample"]].apply(tuple, axis=1), present["shard"]))
            for shard, group in index.groupby(keys.map(home).fillna(""), sort=True):
                rows = group.sort_values(["site", "row"], kind="stable")
                vectors = load_file(store.path / shard) if shard else {}
                merged.append(rows[list(ROW_COLUMNS)], vectors)
    return ActivationStore(out)
