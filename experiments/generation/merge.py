"""``handan merge``: join the files of ``--shard I/N`` jobs, refusing what does not fit together.

Traces files merge when every setting but the shard agrees (the first difference is named), the
shards are 1..N of one N with none missing or repeated, and no (item, sample) is in two of them.
Stores merge under the same checks on their manifests (``hooks.store_merge``); their traces
files (``STORE/traces.parquet``) are merged beside them when every shard has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from experiments.errors import InputError, MissingInput, SettingsMismatch
from experiments.generation import tracefile


def check_shards(labels: Sequence[str | None], names: Sequence[str]) -> None:
    """The shard labels of the inputs form one complete set 1..N (or none is a shard)."""
    if all(label is None for label in labels):
        return
    if any(label is None for label in labels):
        plain = [n for n, label in zip(names, labels) if label is None]
        raise InputError(f"{plain} are not shards while the other inputs are; merge shards only")
    pairs = [tuple(map(int, label.split("/"))) for label in labels]
    counts = {n for _, n in pairs}
    if len(counts) > 1:
        raise InputError(f"the inputs are shards of different N ({sorted(counts)}); merge one run")
    n = counts.pop()
    seen = [i for i, _ in pairs]
    repeated = sorted({i for i in seen if seen.count(i) > 1})
    missing = sorted(set(range(1, n + 1)) - set(seen))
    if repeated or missing:
        raise InputError(
            f"shards of {n}: "
            + "; ".join(
                ([f"repeated {repeated}"] if repeated else [])
                + ([f"missing {missing}"] if missing else [])
            )
            + " — pass each shard's file exactly once"
        )


def _settings(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if k not in ("shard", tracefile.RECORDED)}


def merge_traces(inputs: Sequence[Path], out: Path) -> pd.DataFrame:
    """One traces file at ``out`` from the shards' files; returns the merged table."""
    if Path(out).exists():
        raise SettingsMismatch(f"{out} exists; merge into a new file")
    metas = []
    for path in inputs:
        meta = tracefile.read_traces_meta(Path(path))
        if meta is None:
            raise MissingInput(f"{path} is not a traces file written by handan")
        metas.append(meta)
    first = _settings(metas[0])
    for path, meta in zip(inputs[1:], metas[1:]):
        diff = sorted(
            k for k in first.keys() | _settings(meta).keys() if first.get(k) != meta.get(k)
        )
        if diff:
            changes = ", ".join(f"{k}: {first.get(k)!r} vs {meta.get(k)!r}" for k in diff)
            raise SettingsMismatch(
                f"{path} was made with other settings than {inputs[0]} ({changes}); only shards "
                "of one run merge"
            )
    check_shards([m.get("shard") for m in metas], [str(p) for p in inputs])
    tables = [tracefile.read_traces(Path(p)) for p in inputs]
    table = pd.concat(tables, ignore_index=True)
    twice = table[table.duplicated(tracefile.KEY, keep=False)]
    if len(twice):
        keys = twice[tracefile.KEY].drop_duplicates().head(5).values.tolist()
        raise InputError(
            f"(item_id, sample) {keys} are in more than one input; shards are disjoint"
        )
    meta = dict(metas[0], shard=None)
    meta[tracefile.RECORDED] = dict(
        metas[0].get(tracefile.RECORDED, {}), merged_from=[m.get("shard") for m in metas]
    )
    tracefile.write_traces(table, Path(out), meta)
    return table


def merge_outputs(inputs: Sequence[Path], out: Path) -> str:
    """Merge traces files or store folders (whichever the inputs are); a one-line summary."""
    if not inputs:
        raise InputError("give the shards' files to merge")
    stores = [Path(p).is_dir() and (Path(p) / "manifest.json").exists() for p in inputs]
    if any(stores) and not all(stores):
        raise InputError("merge either traces files or store folders, not both")
    if all(stores):
        from hooks.store_merge import merge_stores

        merged = merge_stores(inputs, out, check_shards)
        traces = [Path(p) / "traces.parquet" for p in inputs]
        note = ""
        if all(t.exists() for t in traces):
            merge_traces(traces, Path(out) / "traces.parquet")
            note = f" and their traces → {Path(out) / 'traces.parquet'}"
        return f"{len(inputs)} stores → {out}: {merged.summary()['n_traces']} traces{note}"
    table = merge_traces([Path(p) for p in inputs], Path(out))
    return f"{len(inputs)} traces files → {out}: {len(table)} traces"
