"""What recording each shard's size and sha256 costs: an append of a 1.5B-sized batch (d_model
1,536, 28 layers x 2 positions x 32 rows, float32: 11 MiB per shard), and a full read of the
store (every site x position) whose first read of each shard checks its sha256.

    python benchmarks/store_checksums.py [--repeats 15]

Appends with the sha256 and appends with the hash stubbed out alternate (paired, so the machine's
load hits both alike) into two stores; prints the median wall time (fsyncs included) and CPU time
of each and their ratio. Then the reads: ``load`` of every site x position from a fresh
``ActivationStore`` (so every shard's sha256 is computed once), against the same with the check
stubbed out, alternated the same way; and what the checks on open (a listing of the shards
folder, a stat per shard) add to reading the index.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

D, LAYERS, POSITIONS, ROWS = 1536, 28, ("prompt_end", "think_close"), 32
SITES = [f"resid_post.{k}" for k in range(LAYERS)]


def manifest() -> dict:
    return dict(
        model="m",
        config_hash="h",
        sites=SITES,
        positions=list(POSITIONS),
        dtype="float32",
        d_model=D,
    )


def one_batch(first: int, rng) -> tuple[pd.DataFrame, dict]:
    rows = [
        dict(model="m", item_id=f"i{first + k:06d}", sample=0, site=s, position=p, token_index=5)
        for k in range(ROWS)
        for s in SITES
        for p in POSITIONS
    ]
    n = ROWS * len(POSITIONS)
    return pd.DataFrame(rows), {s: rng.standard_normal((n, D)).astype(np.float32) for s in SITES}


class _NoHash:
    """``hashlib`` with sha256 stubbed out (the append without the checksum)."""

    @staticmethod
    def sha256(data):
        return hashlib.sha256(b"")


def timed(fn, *args) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def median_ratio(pairs: list[tuple[float, float]]) -> str:
    a, b = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
    return f"{a * 1e3:8.1f} ms vs {b * 1e3:8.1f} ms  (ratio {a / b:.3f})"


def main() -> None:
    import torch

    import hooks.store as store_mod
    from hooks.store import ActivationStore

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    batches = [one_batch(k * ROWS, rng) for k in range(args.repeats)]
    wall, cpu = [], []
    with tempfile.TemporaryDirectory() as tmp:
        hashed = ActivationStore.create_or_open(Path(tmp) / "hashed", manifest())
        plain = ActivationStore.create_or_open(Path(tmp) / "plain", manifest())
        for k, (df, vectors) in enumerate(batches):
            order = ("hashed", "plain") if k % 2 == 0 else ("plain", "hashed")
            times = {}
            for which in order:  # alternate which goes first
                store_mod.hashlib = hashlib if which == "hashed" else _NoHash
                times[which] = timed((hashed if which == "hashed" else plain).append, df, vectors)
            store_mod.hashlib = hashlib
            wall.append((times["hashed"][0], times["plain"][0]))
            cpu.append((times["hashed"][1], times["plain"][1]))
        hashed.close(), plain.close()
        size = next((Path(tmp) / "hashed" / "shards").iterdir()).stat().st_size
        print(f"append of one {size / 2**20:.1f} MiB shard ({args.repeats} paired appends)")
        print(f"  wall, with sha256 vs without: {median_ratio(wall)}")
        print(f"  CPU,  with sha256 vs without: {median_ratio(cpu)}")

        def read_all(check: bool) -> None:
            store = ActivationStore(Path(tmp) / "hashed")
            if not check:
                store._checked = set(store._shards)  # as if every shard were already checked
            for site in SITES:
                for position in POSITIONS:
                    store.load(site, position)

        reads = [
            (timed(lambda: read_all(True))[1], timed(lambda: read_all(False))[1]) for _ in range(5)
        ]
        print(f"read of every site x position of {args.repeats} shards, CPU (5 paired reads)")
        print(f"  first-read sha256 vs none:    {median_ratio(reads)}")
        from hooks.store_checks import check_open, on_disk, recorded
        from hooks.store_index import read_index

        path = Path(tmp) / "hashed"

        def checks() -> None:
            check_open(path, recorded(read_index(path)), on_disk(path))

        opens = [(timed(checks)[1], timed(read_index, path)[1]) for _ in range(9)]
        print(f"  open: the index + its checks vs the index alone, CPU: {median_ratio(opens)}")


if __name__ == "__main__":
    main()
