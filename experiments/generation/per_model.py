"""One model's traces and activation store for a run, whatever the engine or source:

- ``hf``: generation with online capture (one pass);
- ``vllm``: generation with vLLM, then the engine is closed and the HF model records the same
  sites and positions teacher-forced over the traces' ids (``record_from_traces``);
- imported traces (``imported_traces``): a handan traces file made elsewhere, used as given — no
  generation and no store (a model handan cannot run, e.g. DeepSeek-R1).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from experiments.errors import InputError, MissingInput
from experiments.generation import tracefile
from experiments.generation.config import GenerationConfig
from experiments.models.specs import ModelSpec


def traces_and_store(
    spec: ModelSpec,
    items: pd.DataFrame,
    config: GenerationConfig,
    *,
    traces: Path,
    store: Path,
    sites: str,
    positions: Sequence[str],
    store_dtype: str,
    device: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Generate (resumed) and record; returns the traces of ``items``."""
    from experiments.generation.engines import open_engine
    from experiments.generation.forced import record_from_traces
    from experiments.generation.traces import generate_traces
    from experiments.models.loading import free_memory, load_model
    from hooks.sites import expand_sites

    engine, tokenizer = open_engine(spec, config, device=device)
    with engine:
        online = engine.captures
        table = generate_traces(
            engine,
            tokenizer,
            spec,
            items,
            config=config,
            out=traces,
            store=store if online else None,
            sites=expand_sites(engine.model, sites) if online else (),
            positions=positions,
            store_dtype=store_dtype,
            progress=progress,
        )
    del engine
    free_memory()
    if not online:
        model, tokenizer = load_model(spec, device=device)
        record_from_traces(
            model,
            tokenizer,
            spec,
            traces,
            store=store,
            sites=expand_sites(model, sites),
            positions=positions,
            store_dtype=store_dtype,
            batch_size=config.batch_size,
            progress=progress,
        )
        del model
        free_memory()
    return table


def imported_traces(path: str | Path, model: str, items: pd.DataFrame, out: Path) -> pd.DataFrame:
    """The traces of ``model`` in the handan traces file ``path`` (``handan traces import``) for
    ``items``, copied to ``out``; every item needs at least one trace."""
    from experiments.contracts import TRACE_COLUMNS

    path = Path(path)
    meta = tracefile.read_traces_meta(path) if path.exists() else None
    if meta is None:
        raise MissingInput(
            f"imported traces {path} of {model} do not exist or were not written by handan; "
            "make them with `handan traces import FILE --model MODEL --items ITEMS --out PATH`"
        )
    if meta.get("model") != model:
        raise InputError(f"{path} holds traces of {meta.get('model')!r}, not {model!r}")
    table = tracefile.read_traces(path)
    missing = sorted(set(items["item_id"]) - set(table["item_id"]))
    if missing:
        raise InputError(
            f"imported traces {path} of {model} lack {len(missing)} of the run's items: "
            f"{missing[:10]}; import traces for them or restrict the run's items"
        )
    table = table[table["item_id"].isin(set(items["item_id"]))].reset_index(drop=True)
    tracefile.write_traces(table, out, meta)
    return table[list(TRACE_COLUMNS)].astype(TRACE_COLUMNS)
