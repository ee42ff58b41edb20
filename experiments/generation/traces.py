"""Items table + model → Traces table (and, optionally, the activation store) in one pass.

One request per (item, sample), each with its own seed (``rows.request_seed``) and budget (the
token budget, cut where the prompt and budget would pass ``max_model_len``): what a sample draws
does not depend on the batch it ran in, so a resumed run reproduces an uninterrupted one and the
batch size changes only the speed. Work is cut into batches of the requests still to do; after
each batch the store shard is written, then one more traces part (``tracefile``): a kill loses at
most the batch in flight, and a rerun skips every finished sample. The engine (``hf`` or ``vllm``)
is recorded in the metadata; a resume with another engine is refused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from experiments.contracts import TRACE_COLUMNS, stable_hash, validate_items
from experiments.errors import InputError
from experiments.generation import tracefile
from experiments.generation.config import GenerationConfig
from experiments.generation.prompts import budget_summary, check_prompts, prompt_record
from experiments.generation.rows import request_seed, tokenizer_fingerprint, trace_row
from experiments.generation.shards import Shard, in_shard, shard_label
from experiments.models.memory import fit_config
from experiments.models.specs import ModelSpec


def prompt_format(spec: ModelSpec) -> dict:
    return dict(
        chat_template=spec.chat_template,
        system_prompt=spec.system_prompt,
        template_kwargs=spec.template_kwargs,
    )


def weights(spec: ModelSpec) -> dict:
    """Where the weights come from: a model retrained under the same name must not resume."""
    return dict(source=spec.source, revision=spec.revision)


def traces_meta(
    spec: ModelSpec, config: GenerationConfig, engine, tokenizer, shard: Shard | None
) -> dict:
    """A generated traces file's metadata: compared settings, and ``recorded`` notes."""
    from hooks.store_format import handan_version

    return dict(
        model=spec.name,
        **config.identity(),
        **prompt_format(spec),
        **weights(spec),
        shard=shard_label(shard),
        recorded=dict(
            engine_version=engine.version,
            token_counts="generated ids",
            tokenizer=tokenizer_fingerprint(tokenizer),
            handan_version=handan_version(),
            **config.speed(),
        ),
    )


def store_manifest(
    spec_name: str,
    model,
    sites: Sequence[str],
    positions: Sequence[str],
    dtype: str,
    *,
    generation: dict,
    prompt_format: dict,
    weights: dict,
    capture: dict,
    shard: Shard | None = None,
) -> dict:
    """The manifest of a store; ``capture`` says how it was made (``mode`` online / forced);
    ``shard`` (not in the config hash) is what ``handan merge`` checks."""
    from hooks.heads import site_widths
    from hooks.sites import d_model, n_layers

    payload = dict(
        model=spec_name,
        sites=list(sites),
        positions=list(positions),
        dtype=dtype,
        generation=generation,
        prompt_format=prompt_format,
        weights=weights,
        capture=capture,
    )
    return dict(
        payload,
        config_hash=stable_hash(payload),
        shard=shard_label(shard),
        d_model=int(d_model(model)),
        n_layers=int(n_layers(model)),
        # sites narrower than d_model (one attention head's attn_z: d_head)
        **({"widths": widths} if (widths := site_widths(model, sites)) else {}),
    )


def engine_eos(engine, tokenizer, spec: ModelSpec) -> list[int]:
    """handan's EOS set: the tokenizer's, the generation config's and the spec's stop ids."""
    from hooks.engines.hf_loop import eos_token_ids

    return sorted(
        set(eos_token_ids(tokenizer, engine.generation_config)) | set(spec.stop_token_ids)
    )


def model_context(engine) -> int | None:
    """The context of the engine's model when the settings give none: the HF config's positions
    (``experiments.models.loading.context_length``), or the ``max_model_len`` vLLM resolved."""
    from hooks.engines.hf import HFEngine

    if isinstance(engine, HFEngine):
        from experiments.models.loading import context_length

        return context_length(engine.model)
    return engine.context_length


def budgets(
    config: GenerationConfig, prompts: dict[str, list[int]], context: int | None
) -> dict[str, int]:
    """Per item, the new tokens it may generate: the budget, cut where prompt + generation
    would pass ``context`` (``max_model_len``; None: no cap)."""
    if context is None:
        return {iid: config.max_new_tokens for iid in prompts}
    out = {iid: min(config.max_new_tokens, context - len(p)) for iid, p in prompts.items()}
    full = [iid for iid, b in out.items() if b < 1]
    if full:
        raise InputError(
            f"items {full[:5]} have prompts of max_model_len={context} tokens or more; raise "
            "max_model_len (if the model's context allows) or drop them"
        )
    return out


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
    shard: Shard | None = None,
) -> pd.DataFrame:
    """Generate ``config.samples`` traces per item, account them, grade them, write them.

    ``model`` is an HF model (run by the ``hf`` engine) or a ``hooks.engines.Engine``.
    ``checker(task)`` returns the task's answer checker (default: ``experiments.data.get_checker``).
    ``context()`` is entered around generation (e.g. a ``hooks.Steer`` intervention).
    ``shard`` (I, N) keeps the items of shard I of N (``experiments.generation.shards``).
    Returns the traces of exactly the requested (item, sample) keys, in key order; rows of other
    items already in ``out`` stay in the file but are not returned.
    """
    from rich.progress import Progress

    from hooks.accounting import think_tokens
    from hooks.engines.base import Decoding, Engine, Request
    from hooks.engines.hf import HFEngine
    from hooks.engines.hf_loop import encode_prompts

    items = validate_items(items)
    items = items[[in_shard(i, shard) for i in items["item_id"]]].reset_index(drop=True)
    out = Path(out)
    if checker is None:
        from experiments.data import get_checker as checker
    think = think_tokens(tokenizer, spec.think_open, spec.think_close, model=spec.name)
    engine = model if isinstance(model, Engine) else HFEngine(model, tokenizer.pad_token_id)
    if engine.name != config.engine:
        raise InputError(
            f"the settings say engine {config.engine!r} but generation was given the "
            f"{engine.name!r} engine; open the engine the settings name"
        )
    if (store is not None or context is not None) and not engine.captures:
        raise InputError(
            f"the {engine.name} engine cannot capture activations or steer while it generates; "
            "use --engine hf for that, or generate with it and then `handan record --from-traces`"
        )
    eos_ids = engine_eos(engine, tokenizer, spec)
    encoded = encode_prompts(tokenizer, items["prompt"].tolist(), **prompt_format(spec))
    prompts = dict(zip(items["item_id"], encoded))
    window = config.max_model_len or model_context(engine)
    limits = budgets(config, prompts, window)
    if isinstance(engine, HFEngine):  # memory pre-flight: the batch that fits the GPUs
        config = fit_config(engine.model, config, prompts, limits, model_name=spec.name)
    meta = traces_meta(spec, config, engine, tokenizer, shard)
    meta[tracefile.RECORDED].update(
        **prompt_record(prompts), budget=budget_summary(limits, config.max_new_tokens, window)
    )
    done = tracefile.existing_traces(out, meta)
    # the stored rows keep their prompt ids: a template or tokenizer change is refused
    check_prompts(dict(zip(done["item_id"], done["prompt_ids"])), prompts, out)
    by_id = dict(zip(items["item_id"], range(len(items))))
    keys = [(iid, s) for iid in items["item_id"] for s in range(config.samples)]
    decoding = Decoding(
        config.temperature, config.top_p, config.top_k, config.min_p, tuple(eos_ids)
    )

    with contextlib.ExitStack() as stack:
        recording = None
        done_keys = set(zip(done["item_id"], done["sample"].astype(int)))
        if store is not None:
            recording = _open_store(
                stack,
                engine.model,
                spec,
                config,
                store,
                sites,
                positions,
                store_dtype,
                shard,
                prompts,
                (done_keys, out),
            )
            done_keys &= recording.store.completed()
        todo = [k for k in keys if k not in done_keys]
        if context is not None:
            stack.enter_context(context())
        bar = stack.enter_context(Progress(disable=not progress))
        task_bar = bar.add_task(
            f"generate {spec.name}", total=len(keys), completed=len(keys) - len(todo)
        )
        if progress and isinstance(engine, HFEngine):  # per token: long batches take minutes
            tokens = bar.add_task("  tokens", total=None)
            engine.on_token = lambda n, budget, running: bar.update(
                tokens, completed=n, total=budget, description=f"  tokens ({running} rows running)"
            )
            stack.callback(setattr, engine, "on_token", None)
        for start in range(0, len(todo), config.batch_size):
            batch = todo[start : start + config.batch_size]
            requests = [
                Request(tuple(prompts[i]), request_seed(config.seed, i, s), limits[i])
                for i, s in batch
            ]
            cap = None if recording is None else recording.observer(batch, prompts, think)
            gens = engine.generate(requests, decoding, observer=cap)
            rows = [
                trace_row(
                    model=spec.name,
                    item=items.iloc[by_id[iid]],
                    sample=sample,
                    prompt_ids=prompts[iid],
                    generated_ids=g.token_ids,
                    finish_reason=g.finish_reason,
                    think=think,
                    eos_ids=eos_ids,
                    tokenizer=tokenizer,
                    checker=checker,
                )
                for (iid, sample), g in zip(batch, gens)
            ]
            if cap is not None:
                recording.append(batch, cap, [g.token_ids for g in gens], eos_ids)
            tracefile.append_part(pd.DataFrame(rows), out, meta)
            bar.advance(task_bar, len(batch))
    tracefile.finish(out, meta)
    table = tracefile.read_traces(out)
    # the file keeps rows of items no longer requested (data already written stays); the run
    # returns exactly its own (item, sample) keys
    requested = pd.DataFrame(keys, columns=["item_id", "sample"])
    table = requested.merge(table, on=["item_id", "sample"], how="left", validate="one_to_one")
    return table[list(TRACE_COLUMNS)].astype(TRACE_COLUMNS)


class _Recording:
    """Online capture into an open store: one ``Capture`` observer per batch."""

    def __init__(self, store, recorder, spec_name: str, sites, positions) -> None:
        self.store, self.rec = store, recorder
        self.spec_name, self.sites, self.positions = spec_name, list(sites), list(positions)

    def observer(self, batch, prompts, think):
        from hooks.capture import Capture

        device = next(self.rec.model.parameters()).device
        ids = [prompts[iid] for iid, _ in batch]
        return Capture(self.rec, self.sites, self.positions, ids, think, device)

    def append(self, batch, cap, generated, eos_ids) -> None:
        import torch

        captured = cap.collect(generated, eos_ids, getattr(torch, self.store.dtype))
        index = pd.DataFrame(
            [
                dict(
                    model=self.spec_name,
                    item_id=batch[r][0],
                    sample=batch[r][1],
                    site=site,
                    position=pos,
                    token_index=tok,
                )
                for site in self.sites
                for (r, pos, tok) in captured.entries
            ]
        )
        self.store.append(index, captured.vectors)


def _open_store(
    stack, model, spec, config, store, sites, positions, store_dtype, shard, prompts, traced
) -> _Recording:
    """The store open for appending, holding no sample whose trace is not in the traces file
    (``traced``: its keys and path; see ``experiments.generation.resume``)."""
    from experiments.generation.resume import drop_unmatched
    from hooks.capture import parse_positions
    from hooks.recorder import Recorder
    from hooks.store import ActivationStore, normalise_dtype

    sites, positions = list(dict.fromkeys(sites)), list(dict.fromkeys(positions))
    parse_positions(positions)
    if not sites:
        raise InputError("recording needs at least one site, e.g. --sites resid_post.0")
    rec = Recorder(model, sites)  # checks the sites before the store is touched
    manifest = store_manifest(
        spec.name,
        model,
        sites,
        positions,
        normalise_dtype(store_dtype),
        generation=config.identity(),
        prompt_format=prompt_format(spec),
        weights=weights(spec),
        capture=dict(mode="online"),
        shard=shard,
    )
    manifest["prompts"] = prompt_record(prompts)  # recorded, not part of the config hash
    st = stack.enter_context(ActivationStore.create_or_open(store, manifest))
    # the store's manifest keeps the prompt hashes of the run that made it: other prompts (a
    # template or tokenizer change) are named as such before the traces are matched
    check_prompts(st.manifest.get("prompts", {}).get("prompt_hashes", {}), prompts, store)
    if drop_unmatched(st, *traced):  # the last append was ahead of its traces: recompute it
        st.close()
        st = stack.enter_context(ActivationStore.create_or_open(store, manifest))
    stack.enter_context(rec)
    return _Recording(st, rec, spec.name, sites, positions)
