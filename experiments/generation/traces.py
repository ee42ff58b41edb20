"""Items table + model → Traces table (and, optionally, the activation store) in one pass.

Work is cut into fixed batches over the ordered (item, sample) keys; batch b samples with a
generator seeded by (seed, b), so a resumed run reproduces an uninterrupted one exactly. After
each batch the store shard is written, then the traces parquet is rewritten atomically (tmp +
rename): a kill loses at most the batch in flight, and a rerun skips every complete batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from experiments.contracts import TRACE_COLUMNS, stable_hash, validate_items
from experiments.errors import InputError
from experiments.generation import tracefile
from experiments.generation.config import GenerationConfig
from experiments.models.specs import ModelSpec


def store_manifest(
    spec_name: str,
    model,
    sites: Sequence[str],
    positions: Sequence[str],
    dtype: str,
    config: GenerationConfig,
    prompt_format: dict,
    weights: dict,
) -> dict:
    from hooks.sites import d_model, n_layers

    payload = dict(
        model=spec_name,
        sites=list(sites),
        positions=list(positions),
        dtype=dtype,
        generation=asdict(config),
        prompt_format=prompt_format,
        weights=weights,
    )
    config_hash = stable_hash(payload)
    return dict(
        model=spec_name,
        config_hash=config_hash,
        sites=list(sites),
        positions=list(positions),
        dtype=dtype,
        d_model=int(d_model(model)),
        n_layers=int(n_layers(model)),
        generation=asdict(config),
        prompt_format=prompt_format,
        weights=weights,
    )


def generate_traces(
    model,
    tokenizer,
    spec: ModelSpec,
    items: pd.DataFrame,
    *,
    config: GenerationConfig,
    out: str | Path,
    store: str | Path | None = None,
    sites: Sequence[str] = (),
    positions: Sequence[str] = ("prompt_end",),
    store_dtype: str = "float32",
    checker: Callable[[str], Callable[[str, str], bool]] | None = None,
    context: Callable[[], contextlib.AbstractContextManager] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Generate ``config.samples`` traces per item, account them, grade them, write them.

    ``checker(task)`` returns the task's answer checker (default: ``experiments.data.get_checker``).
    ``context()`` is entered around generation (e.g. a ``hooks.Steer`` intervention).
    Returns the traces of exactly the requested (item, sample) keys, in key order; rows of other
    items already in ``out`` stay in the file but are not returned.
    """
    import torch
    from rich.progress import Progress

    from hooks.accounting import account, think_tokens
    from hooks.capture import Capture, parse_positions
    from hooks.engines.hf_loop import encode_prompts, eos_token_ids, generate_batch

    items = validate_items(items)
    out = Path(out)
    if checker is None:
        from experiments.data import get_checker as checker
    think = think_tokens(tokenizer, spec.think_open, spec.think_close, model=spec.name)
    eos_ids = sorted(set(eos_token_ids(model, tokenizer)) | set(spec.stop_token_ids))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    prompt_format = dict(
        chat_template=spec.chat_template,
        system_prompt=spec.system_prompt,
        template_kwargs=spec.template_kwargs,
    )
    # where the weights come from: a model retrained under the same name must not resume old traces
    weights = dict(source=spec.source, revision=spec.revision)
    meta = dict(model=spec.name, **asdict(config), **prompt_format, **weights)
    done = tracefile.existing_traces(out, meta)
    done_keys = set(zip(done["item_id"], done["sample"].astype(int)))

    prompts = encode_prompts(
        tokenizer,
        items["prompt"].tolist(),
        chat_template=spec.chat_template,
        system_prompt=spec.system_prompt,
        template_kwargs=spec.template_kwargs,
    )
    by_id = dict(zip(items["item_id"], range(len(items))))
    keys = [(iid, s) for iid in items["item_id"] for s in range(config.samples)]
    batches = [keys[i : i + config.batch_size] for i in range(0, len(keys), config.batch_size)]
    device = next(model.parameters()).device

    with contextlib.ExitStack() as stack:
        st = rec = None
        stored: set = set()
        if store is not None:
            from hooks.recorder import Recorder
            from hooks.store import ActivationStore, normalise_dtype

            sites, positions = list(dict.fromkeys(sites)), list(dict.fromkeys(positions))
            parse_positions(positions)
            if not sites:
                raise InputError("recording needs at least one site, e.g. --sites resid_post.0")
            rec = Recorder(model, sites)  # checks the sites before the store is touched
            store_dtype = normalise_dtype(store_dtype)
            manifest = store_manifest(
                spec.name, model, sites, positions, store_dtype, config, prompt_format, weights
            )
            st = stack.enter_context(ActivationStore.create_or_open(store, manifest))
            stored = st.completed()
            done_keys &= stored
            stack.enter_context(rec)
        todo = [(b, batch) for b, batch in enumerate(batches) if not set(batch) <= done_keys]
        redo = {k for _, batch in todo for k in batch}
        keep = [(i, int(s)) not in redo for i, s in zip(done["item_id"], done["sample"])]
        rows = [done[keep]] if len(done) else []
        table = pd.concat(rows, ignore_index=True).astype(TRACE_COLUMNS) if rows else done
        if context is not None:
            stack.enter_context(context())
        bar = stack.enter_context(Progress(disable=not progress))
        task_bar = bar.add_task(
            f"generate {spec.name}",
            total=len(keys),
            completed=len(keys) - sum(len(b) for _, b in todo),
        )
        for b, batch in todo:
            ids = [prompts[by_id[iid]] for iid, _ in batch]
            gen = torch.Generator(device=device).manual_seed(config.seed * 1_000_003 + b)
            capture = (
                st is not None and not set(batch) <= stored
            )  # a rerun may find it stored already
            cap = Capture(rec, sites, positions, ids, think, device) if capture else None
            outs = generate_batch(
                model,
                ids,
                max_new_tokens=config.max_new_tokens,
                eos_ids=eos_ids,
                pad_id=pad_id,
                temperature=config.temperature,
                top_p=config.top_p,
                top_k=config.top_k,
                min_p=config.min_p,
                generator=gen,
                observer=cap,
            )
            new = []
            for (iid, sample), p, g in zip(batch, ids, outs):
                item = items.iloc[by_id[iid]]
                acc = account(p, g, think, eos_ids, tokenizer.decode)
                body = [t for t in g if t not in eos_ids]
                response = (
                    tokenizer.decode(body[acc.response_start :], skip_special_tokens=True)
                    if acc.finished_thinking
                    else ""
                )
                new.append(
                    dict(
                        model=spec.name,
                        item_id=iid,
                        task=item["task"],
                        sample=sample,
                        prompt_tokens=len(p),
                        reasoning_tokens=acc.reasoning_tokens,
                        answer_tokens=acc.answer_tokens,
                        finished_thinking=acc.finished_thinking,
                        response=response,
                        correct=bool(
                            acc.finished_thinking
                            and checker(item["task"])(response, item["answer"])
                        ),
                        text=tokenizer.decode(body),
                    )
                )
            if cap is not None:
                captured = cap.collect(outs, eos_ids, getattr(torch, st.dtype))
                index = pd.DataFrame(
                    [
                        dict(
                            model=spec.name,
                            item_id=batch[r][0],
                            sample=batch[r][1],
                            site=site,
                            position=pos,
                            token_index=tok,
                        )
                        for site in sites
                        for (r, pos, tok) in captured.entries
                    ]
                )
                st.append(index, captured.vectors)
            rows.append(pd.DataFrame(new))
            table = pd.concat(rows, ignore_index=True).astype(TRACE_COLUMNS)
            tracefile.write_traces(table, out, meta)
            bar.advance(task_bar, len(batch))
    # the file keeps rows of items no longer requested (data already written stays); the run
    # returns exactly its own (item, sample) keys
    requested = pd.DataFrame(keys, columns=["item_id", "sample"])
    table = requested.merge(table, on=["item_id", "sample"], how="left", validate="one_to_one")
    return table[list(TRACE_COLUMNS)].astype(TRACE_COLUMNS)
