"""``handan record --from-traces``: an activation store from a traces file's token ids.

The traces may come from any engine, from ``handan traces import``, or from another model:

- the same model (the spec the traces name): its own ids, prompt and generation, as stored;
- another model B whose tokenizer has the same vocabulary (``recorded.tokenizer`` of the traces
  metadata): B reads A's generated ids as they are, after A's prompt ids or, given ``items``,
  after B's own encoding of the item prompts (B's template);
- another tokenizer: B's encoding of the item prompts (``items`` needed) followed by A's text
  (everything A wrote, think delimiters included) re-encoded with B's tokenizer, and B's EOS
  where A stopped by itself.

Positions are found on the ids B reads, with B's think tokens. The manifest records
``capture: {mode: forced, traces_model, reads, prompts}``; reruns skip the completed samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from experiments.errors import InputError, MissingInput
from experiments.generation import tracefile
from experiments.generation.prompts import prompt_record
from experiments.generation.rows import tokenizer_fingerprint
from experiments.generation.shards import Shard, in_shard
from experiments.generation.traces import prompt_format, store_manifest, weights
from experiments.models.specs import ModelSpec


def read_for_forcing(path: Path, shard: Shard | None = None) -> tuple[pd.DataFrame, dict]:
    """Rows (with token ids) and metadata of a traces file, or a clear refusal."""
    path = Path(path)
    meta = tracefile.read_traces_meta(path)
    if meta is None:
        raise MissingInput(
            f"{path} is not a traces file written by handan (`handan generate`, `handan traces "
            "import`); pass one of those"
        )
    table = tracefile.read_traces(path)
    missing = [c for c in tracefile.ID_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(
            f"{path} keeps no token ids ({missing}); a run folder's traces.parquet holds only the "
            "contract columns: pass the model's own file, traces/MODEL.parquet"
        )
    table = table[[in_shard(i, shard) for i in table["item_id"]]].reset_index(drop=True)
    return table, meta


def _sequences(table, meta, model, tokenizer, spec, items, eos_ids):
    """(prompt ids, generated ids, EOS ids) per row, and how they were made."""
    from hooks.engines.hf_loop import encode_prompts
    from hooks.forced import ForcedSequence

    same_vocab = meta.get("recorded", {}).get("tokenizer") == tokenizer_fingerprint(tokenizer)
    if not same_vocab and items is None:
        raise InputError(
            f"the traces were written with another tokenizer than {spec.name}'s; give --items "
            "so the prompts can be encoded with it (the traces' text is re-encoded)"
        )
    prompts = None
    if items is not None:
        from experiments.contracts import validate_items

        items = validate_items(items)
        unknown = sorted(set(table["item_id"]) - set(items["item_id"]))
        if unknown:
            raise InputError(
                f"items {unknown[:10]} ({len(unknown)}) of the traces are not in the Items "
                "table given; pass the table the traces were made from"
            )
        encoded = encode_prompts(tokenizer, items["prompt"].tolist(), **prompt_format(spec))
        prompts = dict(zip(items["item_id"], encoded))
    seqs = []
    for row in table.itertuples(index=False):
        stopped = row.finish_reason == "stop"
        prompt = prompts[row.item_id] if prompts is not None else list(row.prompt_ids)
        if same_vocab:
            gen = list(row.generated_ids)
            eos = gen[-1:] if stopped else []
        else:
            gen = tokenizer.encode(row.text, add_special_tokens=False)
            eos = [eos_ids[0]] if stopped else []
            gen += eos
        seqs.append(ForcedSequence(prompt, gen, eos))
    how = dict(
        reads="token ids" if same_vocab else "re-encoded text",
        prompts="traces" if prompts is None else "items",
    )
    return seqs, how


def keys_of(table: pd.DataFrame) -> list[tuple[str, int]]:
    return list(zip(table["item_id"], table["sample"].astype(int)))


def record_from_traces(
    model,
    tokenizer,
    spec: ModelSpec,
    traces: str | Path,
    *,
    store: str | Path,
    sites: Sequence[str],
    positions: Sequence[str] = ("prompt_end",),
    store_dtype: str = "float32",
    batch_size: int = 16,
    items: pd.DataFrame | None = None,
    shard: Shard | None = None,
    progress: bool = True,
):
    """Record ``sites`` × ``positions`` of ``model`` (spec ``spec``) reading the traces in file
    ``traces`` into the store folder ``store``; returns the (closed) ``ActivationStore``."""
    import torch
    from rich.progress import Progress

    from experiments.generation.traces import engine_eos
    from hooks.accounting import think_tokens
    from hooks.capture import parse_positions
    from hooks.engines.hf import HFEngine
    from hooks.forced import iter_forced
    from hooks.recorder import Recorder
    from hooks.store import ActivationStore, normalise_dtype

    table, meta = read_for_forcing(Path(traces), shard)
    if table.empty:
        raise InputError(f"{traces} has no traces to read (in this shard)")
    sites, positions = list(dict.fromkeys(sites)), list(dict.fromkeys(positions))
    parse_positions(positions)
    if not sites:
        raise InputError("recording needs at least one site, e.g. --sites resid_post.0")
    rec = Recorder(model, sites)
    think = think_tokens(tokenizer, spec.think_open, spec.think_close, model=spec.name)
    eos_ids = engine_eos(HFEngine(model), tokenizer, spec)
    seqs, how = _sequences(table, meta, model, tokenizer, spec, items, eos_ids)
    skip = ("model", "shard", tracefile.RECORDED)
    generation = {k: v for k, v in meta.items() if k not in skip}
    manifest = store_manifest(
        spec.name,
        model,
        sites,
        positions,
        normalise_dtype(store_dtype),
        generation=generation,
        prompt_format=prompt_format(spec) if how["prompts"] == "items" else {},
        weights=weights(spec),
        capture=dict(mode="forced", traces_model=meta["model"], **how),
        shard=shard,
    )
    # recorded, not part of the config hash: the prompt ids each (item, sample) was read after
    manifest["prompts"] = prompt_record(
        {f"{i}/{k}": s.prompt_ids for (i, k), s in zip(keys_of(table), seqs)}
    )
    with ActivationStore.create_or_open(store, manifest) as st, rec:
        done = st.completed()
        keys = keys_of(table)
        todo = [i for i, k in enumerate(keys) if k not in done]
        with Progress(disable=not progress) as bar:
            task = bar.add_task(f"record {spec.name} (forced)", total=len(keys))
            bar.advance(task, len(keys) - len(todo))
            dtype = getattr(torch, st.dtype)
            pad = eos_ids[0]
            for batch, captured in iter_forced(
                model, rec, [seqs[i] for i in todo], think, positions, dtype, batch_size, pad
            ):
                rows = [keys[todo[b]] for b in batch]
                index = pd.DataFrame(
                    [
                        dict(
                            model=spec.name,
                            item_id=rows[r][0],
                            sample=rows[r][1],
                            site=site,
                            position=pos,
                            token_index=tok,
                        )
                        for site in sites
                        for (r, pos, tok) in captured.entries
                    ]
                )
                st.append(index, captured.vectors)
                bar.advance(task, len(batch))
    return ActivationStore(store)
