"""Every steering condition of a model generated as rows of shared batches, resumably.

A *condition* is (direction, alpha) — or the unsteered run — with its own vector. All rows of a
run, (condition, item, sample), go to one ``generate_traces`` call as items of their own (id
``{item}@{direction}/alpha={a}``) through ``engine.SteeringEngine``, which steers each row with
its condition's vector and samples it with the seed of its (item, sample): a row draws what a
separate run of its condition would draw, every condition shares the random numbers of a sample,
and a batch holds rows of many conditions (so a few items still fill it). Rows are ordered by
alpha block (unsteered, then ascending |alpha|), then item (in the caller's order, e.g. by
length), then direction, so a batch holds rows of similar length (it runs as long as its longest).

Files under ``OUT/runs``:

- ``{direction}/alpha={a}.json``: the condition (generation settings, site, positions, scale,
  alpha, the vector's sha256), written before anything is generated; a rerun under another value
  of any of them is refused. ``_unsteered/alpha=0.json`` holds only the model and the generation
  settings (shared by every site and scale).
- ``_shared.parquet``: the traces of every row as generated (``generate_traces``' own file:
  resumed batch by batch after a kill, so a killed run ends with what an uninterrupted one writes).
- ``{direction}/alpha={a}.parquet``: the condition's traces with the plain item ids — a traces
  table as a separate run of that condition would write it — rewritten from ``_shared.parquet``
  at the end of a run that added rows to it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from experiments.errors import SettingsMismatch

if TYPE_CHECKING:
    from hooks.ablation import HeadAblation

UNSTEERED = "_unsteered"
SHARED = "_shared.parquet"
SEP = "@"  # composite row id: {item}@{condition key}; condition keys hold no "@"


@dataclass(frozen=True)
class Condition:
    """One steering condition: ``folder`` (direction name or ``UNSTEERED``), ``alpha``, the added
    vector (``None`` unsteered; a ``hooks.ablation.HeadAblation`` for a head-ablation condition,
    ``alpha`` then its dose) and ``spec``, what its guard file records."""

    folder: str
    alpha: float
    vector: np.ndarray | HeadAblation | None
    spec: dict

    @property
    def key(self) -> str:
        return f"{self.folder}/alpha={self.alpha:g}"

    def path(self, out: Path) -> Path:
        return out / "runs" / self.folder / f"alpha={self.alpha:g}.parquet"


def make_condition(
    model: str, generation: dict, folder: str, alpha: float, unit: np.ndarray | None, steering: dict
) -> Condition:
    """The unsteered condition (``unit`` None) depends on the model and the generation settings
    only; a steered one also on alpha, the direction and ``steering`` (site, positions, scale)."""
    base = dict(model=model, generation=generation)
    if unit is None:
        return Condition(UNSTEERED, 0.0, None, base | dict(alpha=0.0, direction=UNSTEERED))
    sha = hashlib.sha256(unit.tobytes()).hexdigest()
    spec = base | dict(alpha=alpha, direction=folder, sha256=sha, **steering)
    return Condition(folder, alpha, alpha * steering["scale"] * unit, spec)


def guard(condition: Condition, out: Path) -> None:
    """Refuse to add to a condition file written under another value of any key of its spec."""
    meta = condition.path(out).with_suffix(".json")
    if meta.exists():
        old = json.loads(meta.read_text())
        diff = sorted(k for k in condition.spec if old.get(k) != condition.spec[k])
        if diff:
            raise SettingsMismatch(
                f"{condition.path(out)} was generated under another condition (differs in "
                f"{diff}); use another --out or delete that file"
            )
    else:
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps(condition.spec, sort_keys=True))


def row_order(item_ids: Sequence[str], conditions: Sequence[Condition]) -> list[tuple]:
    """(item, condition) in generation order: alpha blocks (unsteered first, then ascending
    |alpha|, negative first), items in the given order, then directions."""
    blocks: dict[float, list[Condition]] = {}
    for c in conditions:
        blocks.setdefault(c.alpha, []).append(c)
    ordered = [blocks[a] for a in sorted(blocks, key=lambda a: (abs(a), a))]
    return [(iid, c) for block in ordered for iid in item_ids for c in block]


def run_conditions(
    model,
    tokenizer,
    spec,
    items: pd.DataFrame,
    conditions: Sequence[Condition],
    *,
    site: str,
    positions: str,
    config,
    out: Path,
    checker: Callable | None,
    progress: bool,
) -> None:
    """Generate every (condition, item, sample) row not yet generated, in shared batches; then
    rewrite the condition files from the shared traces."""
    from experiments.generation.rows import request_seed
    from experiments.generation.traces import generate_traces
    from experiments.steering.engine import SteeringEngine

    for c in conditions:
        guard(c, out)
    ids = items["item_id"].astype(str).tolist()
    position = {iid: k for k, iid in enumerate(ids)}
    order = row_order(ids, conditions)
    row_ids = [f"{iid}{SEP}{c.key}" for iid, c in order]
    rows = items.iloc[[position[iid] for iid, _ in order]].assign(item_id=row_ids)
    seeds = {
        request_seed(config.seed, row_id, s): (request_seed(config.seed, iid, s), c.vector)
        for row_id, (iid, c) in zip(row_ids, order)
        for s in range(config.samples)
    }
    shared = out / "runs" / SHARED
    shared.parent.mkdir(parents=True, exist_ok=True)
    engine = SteeringEngine(
        model, tokenizer.pad_token_id, site=site, positions=positions, rows=seeds
    )
    generate_traces(
        engine,
        tokenizer,
        spec,
        rows.reset_index(drop=True),
        config=config,
        out=shared,
        checker=checker,
        progress=progress,
    )
    split(shared, out, conditions)


def split(shared: Path, out: Path, conditions: Sequence[Condition]) -> None:
    """Rewrite each condition's traces file from the shared file (plain item ids, the shared
    file's generation metadata; rows of items other runs steered stay)."""
    from experiments.generation import tracefile

    table = tracefile.read_traces(shared)
    meta = tracefile.read_traces_meta(shared)
    parts = table["item_id"].astype(str).str.rsplit(SEP, n=1, expand=True)
    table = table.assign(item_id=parts[0].to_numpy())
    for c in conditions:
        rows = table[(parts[1] == c.key).to_numpy()].reset_index(drop=True)
        path = c.path(out)
        if path.exists():
            old = pd.read_parquet(path, columns=["item_id", "sample"])
            if set(zip(old["item_id"], old["sample"])) == set(zip(rows["item_id"], rows["sample"])):
                continue  # already holds exactly these rows
        tracefile.write_traces(rows, path, meta)
