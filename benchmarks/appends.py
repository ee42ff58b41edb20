"""Appends to the activation store and to a running traces file cost the same at 100 and at
10,000 items: each append writes one new file (a shard and an index part; a traces part) and
rewrites nothing.

    python benchmarks/appends.py [--items 10000] [--batch 16] [--repeats 12]

Fills one store (4 sites x 3 positions, d_model 64, batches of ``--batch`` items) and one traces
file's parts to 100 items and another pair to ``--items`` items, then appends a batch to the small
and to the large one in alternation, ``--repeats`` times (paired, so a change in the machine's load
hits both alike); prints the median append time at each size (wall clock, fsyncs included, and
CPU time of the process, which the disk's other traffic does not reach) and their ratio (target:
about 1),
and, for contrast, what one whole rewrite of the large index costs (what every append paid before
the index had parts).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

SITES = [f"resid_post.{k}" for k in range(4)]
POSITIONS = ["prompt_end", "think_close", "answer_end"]
D = 64


def store_batch(first: int, n: int, rng) -> tuple[pd.DataFrame, dict]:
    rows = [
        dict(model="m", item_id=f"i{first + k:06d}", sample=0, site=s, position=p, token_index=5)
        for k in range(n)
        for s in SITES
        for p in POSITIONS
    ]
    per_site = n * len(POSITIONS)
    return pd.DataFrame(rows), {
        s: rng.standard_normal((per_site, D)).astype(np.float32) for s in SITES
    }


def traces_batch(first: int, n: int, rng) -> pd.DataFrame:
    from experiments.contracts import TRACE_COLUMNS

    rows = []
    for k in range(n):
        gen = rng.integers(0, 1000, 400).tolist()
        rows.append(
            dict(
                model="m",
                item_id=f"i{first + k:06d}",
                task="t",
                sample=0,
                prompt_tokens=40,
                reasoning_tokens=380,
                answer_tokens=19,
                finished_thinking=True,
                response="42",
                correct=True,
                text="x" * 1200,
                prompt_ids=list(range(40)),
                generated_ids=gen,
                finish_reason="stop",
            )
        )
    return pd.DataFrame(rows).astype(TRACE_COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    from experiments.generation import tracefile
    from hooks.atomic import parquet_bytes
    from hooks.store import ActivationStore

    rng = np.random.default_rng(0)
    root = Path(tempfile.mkdtemp(prefix="handan-appends-"))
    manifest = dict(
        model="m", config_hash="h", sites=SITES, positions=POSITIONS, dtype="float32", d_model=D
    )
    meta = dict(model="m", recorded={})
    sizes = {"100": 100, f"{args.items:,}": args.items}
    stores, filled = {}, {}
    times = {k: {w: [] for w in ("store", "traces", "store cpu", "traces cpu")} for k in sizes}
    for key, n in sizes.items():
        stores[key] = ActivationStore.create_or_open(root / f"store-{n}", manifest)
        for first in range(0, n, args.batch):
            stores[key].append(*store_batch(first, min(args.batch, n - first), rng))
            tracefile.append_part(
                traces_batch(first, min(args.batch, n - first), rng), root / f"t-{n}.parquet", meta
            )
        filled[key] = n
    for _ in range(args.repeats):
        for key, n in sizes.items():
            rows, vectors = store_batch(filled[key], args.batch, rng)
            table = traces_batch(filled[key], args.batch, rng)
            start, cpu = time.perf_counter(), time.process_time()
            stores[key].append(rows, vectors)
            times[key]["store"].append(time.perf_counter() - start)
            times[key]["store cpu"].append(time.process_time() - cpu)
            start, cpu = time.perf_counter(), time.process_time()
            tracefile.append_part(table, root / f"t-{n}.parquet", meta)
            times[key]["traces"].append(time.perf_counter() - start)
            times[key]["traces cpu"].append(time.process_time() - cpu)
            filled[key] += args.batch
    small, large = sizes
    for what in ("store", "store cpu", "traces", "traces cpu"):
        a, b = (statistics.median(times[k][what]) * 1e3 for k in (small, large))
        print(
            f"{what + ' append':<18} at {small} items {a:7.2f} ms   at {large} items {b:7.2f} ms"
            f"   ratio {b / a:5.2f}"
        )
    start = time.perf_counter()
    parquet_bytes(stores[large].index)
    rewrite = time.perf_counter() - start
    print(
        f"for contrast: serialising the whole index once at {large} items takes "
        f"{rewrite * 1e3:.0f} ms (what every append paid before the index had parts)"
    )
    for store in stores.values():
        store.close()


if __name__ == "__main__":
    main()
