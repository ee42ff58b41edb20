"""Every steering condition of a model generated as rows of shared batches, resumably.

A *condition* is (direction, alpha) — or the unsteered run — with its own vector. A *pass* is one
``generate_traces`` call over the items, each item (with all its samples) under one of its
conditions, each row steered with its own vector (``hooks.interventions.PromptSteer``: a row's
vector is picked by its prompt, however generation batches the rows). An item appears once per
pass because its samples' seeds depend on (item, sample) only: a row draws what it would draw in
a separate run of its condition (common random numbers across conditions, and a batch changes
nothing but the speed). Pass k gives each item its k-th condition still to do, in a fixed order:
the unsteered run, then one block per alpha in which the directions are rotated by the item's
position, so a batch holds rows of many directions at one alpha (rows of one alpha have similar
lengths; a batch runs as long as its longest row).

Files under ``OUT/runs``:

- ``{direction}/alpha={a}.json``: the condition (generation settings, site, positions, scale,
  alpha, the vector's sha256), written before anything is generated; a rerun under another value
  of any of them is refused. ``_unsteered/alpha=0.json`` holds only the model and the generation
  settings (shared by every site and scale).
- ``{direction}/alpha={a}.parquet``: the condition's traces (a traces table, one row per item x
  sample), every item steered under it so far.
- ``_passes/{hash}.json`` + ``.parquet``: a pass in flight (its item → condition assignment and
  its traces). When every pass is done their rows are merged into the condition files and the
  pass files removed. A killed run leaves its passes; the rerun counts the finished ones as done,
  forms the same next pass again (same assignment, same file) and resumes it batch by batch, so it
  ends with what an uninterrupted run writes.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.contracts import stable_hash
from experiments.errors import SettingsMismatch

UNSTEERED = "_unsteered"
PASSES = "_passes"


@dataclass(frozen=True)
class Condition:
    """One steering condition: ``folder`` (direction name or ``UNSTEERED``), ``alpha``, the added
    vector (``None`` unsteered) and ``spec``, what its guard file records."""

    folder: str
    alpha: float
    vector: np.ndarray | None
    spec: dict

    @property
    def key(self) -> str:
        return f"{self.folder}/alpha={self.alpha:g}"

    @property
    def spec_hash(self) -> str:
        return stable_hash(self.spec)

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


def condition_order(item_ids: Sequence[str], conditions: Sequence[Condition]) -> dict:
    """Per item, its conditions in generation order: unsteered first, then one block per alpha
    (ascending |alpha|, negative first), directions rotated by the item's position in a block."""
    blocks: dict[float, list[Condition]] = {}
    for c in conditions:
        blocks.setdefault(c.alpha, []).append(c)
    ordered = [blocks[a] for a in sorted(blocks, key=lambda a: (abs(a), a))]
    out = {}
    for p, iid in enumerate(item_ids):
        out[iid] = [
            c for block in ordered for c in block[p % len(block) :] + block[: p % len(block)]
        ]
    return out


def _pass_files(out: Path) -> list[tuple[Path, dict]]:
    folder = out / "runs" / PASSES
    return [(p, json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]


def done_items(
    out: Path, conditions: Sequence[Condition], samples: int, prompts: dict[str, tuple]
) -> dict[str, set]:
    """Per condition key, the items whose every sample is generated: in the condition's file or
    in a finished pass recorded under the same condition spec. A file row of a requested item
    generated from other prompt ids (a changed chat template or tokenizer) is refused."""
    done: dict[str, set] = {}
    for c in conditions:
        path, ids = c.path(out), set()
        if path.exists():
            rows = pd.read_parquet(path)
            rows = rows[rows["sample"] < samples].astype({"item_id": str})
            if "prompt_ids" in rows:
                for iid, p in zip(rows["item_id"], rows["prompt_ids"]):
                    if iid in prompts and tuple(p) != prompts[iid]:
                        raise SettingsMismatch(
                            f"{path}: item {iid!r} was steered from other prompt ids than this "
                            "run encodes (the chat template or tokenizer changed); use another "
                            "--out or delete that file"
                        )
            rows = rows[["item_id", "sample"]]
            counts = rows.drop_duplicates().groupby("item_id")["sample"].nunique()
            ids = set(counts.index[counts == samples].astype(str))
        done[c.key] = ids
    specs = {c.key: c.spec_hash for c in conditions}
    for _, meta in _pass_files(out):
        if meta.get("complete") and meta["samples"] >= samples:
            for iid, key in meta["items"].items():
                if specs.get(key) == meta["specs"][key]:
                    done[key].add(iid)
    return done


def next_pass(remaining: dict[str, list[Condition]], prompts: dict[str, tuple]) -> dict:
    """Each item's first condition still to do; an item whose prompt is already in the pass
    under another condition waits for a later pass (a row's vector is picked by its prompt)."""
    taken, by_prompt = {}, {}
    for iid, todo in remaining.items():
        if todo and by_prompt.setdefault(prompts[iid], todo[0].key) == todo[0].key:
            taken[iid] = todo[0]
    return taken


def balanced_batch(n_rows: int, batch_size: int) -> int:
    """The batch size that cuts ``n_rows`` into as many batches as ``batch_size`` does, all of
    (nearly) equal size: no short last batch running as long as the full ones."""
    return math.ceil(n_rows / math.ceil(n_rows / batch_size))


def run_passes(
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
    """Generate every (item, condition) not yet done, pass after pass; then merge into the
    condition files."""
    from experiments.generation.traces import generate_traces
    from hooks.engines.hf_loop import encode_prompts
    from hooks.interventions import PromptSteer

    for c in conditions:
        guard(c, out)
    ids = items["item_id"].astype(str).tolist()
    encoded = encode_prompts(
        tokenizer,
        items["prompt"].tolist(),
        chat_template=spec.chat_template,
        system_prompt=spec.system_prompt,
        template_kwargs=spec.template_kwargs,
    )
    prompts = {iid: tuple(p) for iid, p in zip(ids, encoded)}
    done = done_items(out, conditions, config.samples, prompts)
    remaining = {
        iid: [c for c in order if iid not in done[c.key]]
        for iid, order in condition_order(ids, conditions).items()
    }
    by_id = items.assign(item_id=ids).set_index("item_id", drop=False)
    dtype = next(model.parameters()).dtype
    folder = out / "runs" / PASSES
    while any(remaining.values()):
        assign = next_pass(remaining, prompts)
        record = dict(
            items={iid: c.key for iid, c in assign.items()},
            specs={c.key: c.spec_hash for c in assign.values()},
            samples=config.samples,
            generation=config.identity(),
        )
        name = stable_hash(record)
        meta = folder / f"{name}.json"
        if not meta.exists():
            folder.mkdir(parents=True, exist_ok=True)
            meta.write_text(json.dumps(record | dict(complete=False), sort_keys=True))
        vectors = {prompts[iid]: _torch_vector(c.vector, model, dtype) for iid, c in assign.items()}
        steered = any(c.vector is not None for c in assign.values())
        generate_traces(
            model,
            tokenizer,
            spec,
            by_id.loc[list(assign)].reset_index(drop=True),
            config=replace(
                config, batch_size=balanced_batch(len(assign) * config.samples, config.batch_size)
            ),
            out=folder / f"{name}.parquet",
            checker=checker,
            context=(lambda v=vectors: PromptSteer(model, site, v, positions=positions))
            if steered
            else None,
            progress=progress,
        )
        meta.write_text(json.dumps(record | dict(complete=True), sort_keys=True))
        for iid in assign:
            remaining[iid].pop(0)
    merge_passes(out, conditions)


def _torch_vector(vector: np.ndarray | None, model, dtype):
    import torch

    from hooks.sites import d_model

    if vector is None:
        return torch.zeros(d_model(model), dtype=dtype)
    return torch.as_tensor(vector, dtype=dtype)


def merge_passes(out: Path, conditions: Sequence[Condition]) -> None:
    """Move the rows of every finished pass into its conditions' traces files (atomic rewrites,
    one per condition, with the passes' generation metadata; rows already there are kept), then
    remove every pass file."""
    from experiments.generation import tracefile

    specs = {c.key: c for c in conditions}
    new: dict[str, list[pd.DataFrame]] = {}
    meta: dict | None = None
    files = _pass_files(out)
    for path, record in files:
        if not record.get("complete"):
            continue
        traces = path.with_suffix(".parquet")
        rows = tracefile.read_traces(traces)
        meta = meta or tracefile.read_traces_meta(traces)
        key = rows["item_id"].astype(str).map(record["items"])
        for k, part in rows.groupby(key, sort=False):
            if k in specs and specs[k].spec_hash == record["specs"][k]:
                new.setdefault(k, []).append(part)
    for k, parts in new.items():
        path = specs[k].path(out)
        old = [tracefile.read_traces(path)] if path.exists() else []
        table = pd.concat([*old, *parts], ignore_index=True)
        table = table.drop_duplicates(["item_id", "sample"], keep="first")
        tracefile.write_traces(table.reset_index(drop=True), path, meta)
    for path, _ in files:
        for leftover in path.parent.glob(f"{path.stem}.*"):
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
