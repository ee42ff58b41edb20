"""The activation store: a folder of activation vectors written while generating.

Layout::

    STORE/manifest.json      model, config_hash, sites, positions, dtype, d_model,
                             handan_version, created (UTC ISO time), and optionally widths
                             ({site: width} for sites whose vectors are not d_model wide,
                             e.g. one attention head's output)
    STORE/index.parquet/     one row per saved vector: model, item_id, sample, site, position,
                             token_index, shard, row — a folder of parts (part-000001.parquet,
                             one per append), read as one table by pyarrow / pandas; each part
                             also records its shard's shard_bytes and shard_sha256
    STORE/shards/shard-000001.safetensors   one 2-D tensor [rows, width] per site (key = site;
                             width = widths[site], else d_model)
    STORE/write.lock         held (flock) by the one process appending, if any

``shard`` is the shard's path relative to STORE and ``row`` the row inside that shard's tensor for
the row's site. A position that never occurred in a trace (e.g. ``think_close`` of a trace cut at
the budget) is an *absent* row: ``shard == ""``, ``row == -1``, ``token_index == -1``, no vector.

Atomicity: each ``append`` writes one shard (temporary file, fsync, ``os.replace``), then one new
index part the same way; nothing already written is rewritten, so an append costs the same at any
store size. A shard is complete iff an index part references it; reopening a store for writing
deletes the one shard and the temporary files a killed append leaves, so a rerun resumes from
the last complete append (``completed()`` lists the (item_id, sample) pairs to skip). Stores of
older handan versions (one ``index.parquet`` file) are read, not appended to.

Damage is detected, never read as numbers (``hooks.store_checks``): every open refuses a missing
index, a referenced shard that is missing or not of the size written, and shards no index part
references beyond that one leftover (lost index parts: nothing deletes those shards); ``load``
compares each shard's sha256 with the recorded one the first time it reads it. Each refusal is one
line naming the file and `handan store repair STORE` (``hooks.store_verify``), which drops what
cannot be trusted so that a rerun recomputes it; `handan store verify STORE` checks every shard.

dtype: vectors are stored in the manifest's dtype (float32, float16 or bfloat16). float32 and
float16 stores read with numpy alone; bfloat16 stores need torch to read (numpy has no bfloat16).

Reading one site/position without handan (float32/float16 stores; needs safetensors + pyarrow)::

    import numpy as np, pyarrow.parquet as pq
    from safetensors.numpy import load_file
    rows = pq.read_table(f"{store}/index.parquet", filters=[("site", "=", site), ("position", "=", position), ("shard", "!=", "")]).to_pylist()
    shards = {s: load_file(f"{store}/{s}") for s in {r["shard"] for r in rows}}
    X = np.stack([shards[r["shard"]][site][r["row"]] for r in rows])  # [n, width], index order
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments.errors import InputError, MissingInput, SettingsMismatch
from hooks.atomic import atomic_write
from hooks.store_checks import check_open, check_shard, number, on_disk, recorded
from hooks.store_format import (
    INDEX,
    INDEX_COLUMNS,
    INDEX_PART_RE,
    LOCK,
    MANIFEST,
    PART_COLUMNS,
    REQUIRED_KEYS,
    ROW_COLUMNS,
    SHARD_DIR,
    empty_index,
    handan_version,
    normalise_dtype,
    read_manifest,
    refuse_mismatch,
    write_lock,
)
from hooks.store_index import parts, read_index, write_part


class ActivationStore:
    """An activation store folder. ``ActivationStore(path)`` opens it read-only;
    ``ActivationStore.create_or_open(path, manifest)`` opens it for appending."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not manifest.exists():
            raise MissingInput(
                f"{self.path} is not an activation store (no {MANIFEST}); pass the folder that "
                "`handan record --out` wrote"
            )
        self.manifest: dict[str, Any] = read_manifest(self.path)
        listed = on_disk(self.path)  # before the index: see hooks.store_checks.on_disk
        read = read_index(self.path)
        self._shards = recorded(read)  # shard → (bytes, sha256) recorded at write
        check_open(self.path, self._shards, listed)
        self._checked: set[str] = set()  # shards whose sha256 this object has compared
        self._parts: list[pd.DataFrame] = [read[list(INDEX_COLUMNS)]]
        self._joined: pd.DataFrame | None = self._parts[0]
        self._done = {(str(i), int(s)) for i, s in zip(read["item_id"], read["sample"])}
        numbers = [int(m.group(1)) for p in parts(self.path) if (m := INDEX_PART_RE.match(p.name))]
        self._next_part = max(numbers, default=0) + 1
        self._shard_counter: int | None = None
        self._lock: Any = None

    # ---- opening for writing -------------------------------------------------------------
    @classmethod
    def create_or_open(cls, path: str | Path, manifest: Mapping[str, Any]) -> ActivationStore:
        """Create the store at ``path`` with ``manifest``, or reopen it to append.

        ``manifest`` needs model, config_hash, sites, positions, dtype, d_model; handan_version
        and created are filled in. Reopening refuses (ValueError) when model, config_hash, sites,
        positions, dtype or d_model differ (or the store is damaged: see the module docstring),
        and deletes what a killed append left (its shard, ``*.tmp`` files). The returned store holds ``STORE/write.lock``
        until ``close()`` (or the end of a ``with`` block): a second writer is refused
        (FileExistsError) instead of deleting the first one's shard in flight."""
        path = Path(path)
        missing = [k for k in REQUIRED_KEYS if k not in manifest]
        if missing:
            raise InputError(f"store manifest lacks {missing}; it needs {list(REQUIRED_KEYS)}")
        new = {
            **manifest,
            "sites": list(manifest["sites"]),
            "positions": list(manifest["positions"]),
            "dtype": normalise_dtype(manifest["dtype"]),
            "d_model": int(manifest["d_model"]),
        }
        if "widths" in manifest:
            new["widths"] = {str(k): int(v) for k, v in manifest["widths"].items()}
        if not (path / MANIFEST).exists() and path.exists():
            # a creation killed before the manifest landed leaves only these behind
            ours = {SHARD_DIR, INDEX, LOCK}
            if any(
                p.name not in ours and not p.name.endswith((".tmp", ".staged"))
                for p in path.iterdir()
            ) or any((path / SHARD_DIR).glob("*")):
                raise SettingsMismatch(
                    f"{path} exists, is not empty and has no {MANIFEST}; pass another --out folder"
                )
        path.mkdir(parents=True, exist_ok=True)
        lock = write_lock(path)
        try:
            if not (path / MANIFEST).exists():
                new.setdefault("handan_version", handan_version())
                new.setdefault("created", datetime.now(UTC).isoformat(timespec="seconds"))
                (path / SHARD_DIR).mkdir(exist_ok=True)
                (path / INDEX).mkdir(exist_ok=True)
                write_part(path, empty_index(PART_COLUMNS), 0)  # the schema, for empty readers
                atomic_write(path / MANIFEST, json.dumps(new, indent=2).encode())
                store = cls(path)
            else:
                store = cls(path)
                if (path / INDEX).is_file():
                    raise SettingsMismatch(
                        f"{path} was written by an older handan (one {INDEX} file); it can be "
                        "read but not appended to: record into another --out folder"
                    )
                refuse_mismatch(path, store.manifest, new)
                store._remove_leftovers()
        except BaseException:
            lock.close()
            raise
        store._lock = lock
        return store

    def close(self) -> None:
        """Release the write lock (a store opened by ``create_or_open``); reading still works."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> ActivationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _remove_leftovers(self) -> None:
        """Delete what a killed append left: its shard (the one unreferenced shard ``check_open``
        lets through) and temporary files."""
        for shard in on_disk(self.path):
            if shard not in self._shards:
                (self.path / shard).unlink()
        for tmp in [*self.path.glob("*.tmp"), *self.path.glob("*.staged")]:
            tmp.unlink()
        for tmp in (self.path / SHARD_DIR).glob("*.tmp"):
            tmp.unlink()

    @property
    def _index(self) -> pd.DataFrame:
        if self._joined is None:
            self._joined = pd.concat(self._parts, ignore_index=True).astype(INDEX_COLUMNS)
            self._parts = [self._joined]
        return self._joined

    # ---- reading ---------------------------------------------------------------------------
    @property
    def sites(self) -> list[str]:
        return list(self.manifest["sites"])

    @property
    def positions(self) -> list[str]:
        return list(self.manifest["positions"])

    @property
    def d_model(self) -> int:
        return int(self.manifest["d_model"])

    def width(self, site: str) -> int:
        """Length of ``site``'s vectors: ``widths[site]`` of the manifest, else ``d_model``."""
        return int(self.manifest.get("widths", {}).get(site, self.d_model))

    @property
    def dtype(self) -> str:
        return str(self.manifest["dtype"])

    @property
    def index(self) -> pd.DataFrame:
        """A copy of the index (columns: model, item_id, sample, site, position, token_index,
        shard, row); absent rows have shard == ""."""
        return self._index.copy()

    def completed(self) -> set[tuple[str, int]]:
        """The (item_id, sample) pairs already in the store (skip them on a rerun)."""
        return set(self._done)

    def load(self, site: str, position: str) -> tuple[np.ndarray, pd.DataFrame]:
        """Vectors of ``site`` at ``position``: ``X [n, width(site)]`` float32 and their index rows,
        in index order, absent rows excluded."""
        if site not in self.sites:
            raise InputError(f"store {self.path} has no site {site!r}; it has {self.sites}")
        known = sorted(set(self._index["position"]) | set(self.positions))
        if position not in known:
            raise InputError(f"store {self.path} has no position {position!r}; it has {known}")
        rows = self._index[
            (self._index["site"] == site)
            & (self._index["position"] == position)
            & (self._index["shard"] != "")
        ].reset_index(drop=True)
        X = np.empty((len(rows), self.width(site)), dtype=np.float32)
        for shard, where in rows.groupby("shard", sort=False).groups.items():
            X[where] = self._read(str(shard), site)[rows.loc[where, "row"].to_numpy()]
        return X, rows

    def _read(self, shard: str, site: str) -> np.ndarray:
        """One site's full tensor from one shard, as float32."""
        from safetensors import safe_open

        if shard not in self._checked:  # an altered byte is refused, never read as a number
            check_shard(self.path, shard, self._shards.get(shard, (-1, ""))[1])
            self._checked.add(shard)
        framework = "pt" if self.dtype == "bfloat16" else "np"
        with safe_open(self.path / shard, framework=framework) as f:
            tensor = f.get_tensor(site)
        if framework == "pt":
            return tensor.float().numpy()
        return tensor.astype(np.float32, copy=False)

    def summary(self) -> dict[str, Any]:
        """Manifest, totals and per (site, position) counts of saved and absent vectors."""
        idx = self._index
        absent = idx["shard"] == ""
        counts = (
            idx.assign(saved=~absent, absent=absent)
            .groupby(["site", "position"], sort=True)[["saved", "absent"]]
            .sum()
            .reset_index()
        )
        shard_files = sorted(set(idx.loc[~absent, "shard"]))
        return {
            "path": str(self.path),
            "manifest": dict(self.manifest),
            "n_traces": len(self.completed()),
            "n_items": int(idx["item_id"].nunique()),
            "n_vectors": int((~absent).sum()),
            "n_absent": int(absent.sum()),
            "n_shards": len(shard_files),
            "bytes": sum((self.path / s).stat().st_size for s in shard_files),
            "counts": [
                {
                    "site": r.site,
                    "position": r.position,
                    "saved": int(r.saved),
                    "absent": int(r.absent),
                }
                for r in counts.itertuples(index=False)
            ],
        }

    # ---- writing -----------------------------------------------------------------------------
    def append(self, index_rows: pd.DataFrame, vectors: Mapping[str, Any]) -> None:
        """Append one batch of traces atomically (one shard, then the index).

        ``index_rows`` has columns model, item_id, sample, site, position, token_index; a row
        with ``token_index < 0`` is absent (no vector). ``vectors[site]`` is a Tensor or ndarray
        ``[n, width(site)]`` holding that site's present rows, in the order they appear in
        ``index_rows``. Pairs (item_id, sample) already in the store raise ValueError: skip
        them (see ``completed()``)."""
        missing = [c for c in ROW_COLUMNS if c not in index_rows.columns]
        if missing:
            raise InputError(f"index rows lack column(s) {missing}; they need {list(ROW_COLUMNS)}")
        rows = (
            index_rows[list(ROW_COLUMNS)]
            .reset_index(drop=True)
            .astype({c: INDEX_COLUMNS[c] for c in ROW_COLUMNS})
        )
        if len(rows) == 0:
            return
        self._check_rows(rows)
        present = rows["token_index"] >= 0
        rows["token_index"] = rows["token_index"].where(present, -1)
        rows["shard"] = ""
        rows["row"] = -1
        tensors = {}
        for site in rows.loc[present, "site"].unique():
            mask = present & (rows["site"] == site)
            tensors[site] = self._as_stored(site, vectors, int(mask.sum()))
            rows.loc[mask, "row"] = np.arange(int(mask.sum()))
        extra = set(vectors) - set(tensors)
        if extra:
            raise InputError(
                f"vectors given for {sorted(extra)} but no present index rows use them; "
                "drop those keys (a batch where every row is absent has no vectors)"
            )
        record = (-1, "")  # (bytes, sha256) of the shard, what check_open compares
        if tensors:
            from safetensors.torch import save

            shard = f"{SHARD_DIR}/shard-{self._next_shard():06d}.safetensors"
            data = save(tensors)
            record = (len(data), hashlib.sha256(data).hexdigest())
            atomic_write(self.path / shard, data)
            rows.loc[present, "shard"] = shard
            self._shards[shard] = record
            self._checked.add(shard)
        rows["shard_bytes"] = np.where(present, record[0], -1)
        rows["shard_sha256"] = np.where(present, record[1], "")
        write_part(self.path, rows, self._next_part)
        self._next_part += 1
        self._parts.append(rows[list(INDEX_COLUMNS)].astype(INDEX_COLUMNS))
        self._joined = None
        self._done |= {(str(i), int(s)) for i, s in zip(rows["item_id"], rows["sample"])}

    def _check_rows(self, rows: pd.DataFrame) -> None:
        models = set(rows["model"]) - {self.manifest["model"]}
        if models:
            raise InputError(
                f"rows for model(s) {sorted(models)} cannot go into a store of "
                f"{self.manifest['model']!r}; use another --out folder"
            )
        sites = set(rows["site"]) - set(self.sites)
        if sites:
            raise InputError(
                f"sites {sorted(sites)} are not in the store's manifest {self.sites}; "
                "record them into another store"
            )
        done = self._done & {
            (str(i), int(s)) for i, s in rows[["item_id", "sample"]].itertuples(index=False)
        }
        if done:
            raise InputError(
                f"(item_id, sample) pairs {sorted(done)[:5]} are already in {self.path}; "
                "skip the pairs in store.completed()"
            )
        key = ["item_id", "sample", "site", "position", "token_index"]
        if rows.duplicated(key).any():
            dup = rows.loc[rows.duplicated(key), key].head(3).to_dict("records")
            raise InputError(
                f"index rows repeat (item_id, sample, site, position, token_index): {dup}; "
                "give each site and position once"
            )

    def _as_stored(self, site: str, vectors: Mapping[str, Any], n: int) -> Any:
        """``vectors[site]`` as a contiguous CPU torch tensor of the store's dtype, checked."""
        import torch

        if site not in vectors:
            raise InputError(
                f"index rows have {n} present rows of {site!r} but no vectors[{site!r}]"
            )
        x = vectors[site]
        x = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x.detach()
        if tuple(x.shape) != (n, self.width(site)):
            raise InputError(
                f"vectors[{site!r}] has shape {tuple(x.shape)}; the index rows need "
                f"({n}, {self.width(site)}) (one row per present index row of that site)"
            )
        return x.to(device="cpu", dtype=getattr(torch, self.dtype)).contiguous()

    def _next_shard(self) -> int:
        """One more than any shard number on disk or in the index (found once, then counted)."""
        if self._shard_counter is None:
            names = [*on_disk(self.path), *self._shards]
            self._shard_counter = max((number(s) or 0 for s in names), default=0)
        self._shard_counter += 1
        return self._shard_counter
