"""`handan generate` (traces), `handan record` (activation store: online or teacher-forced),
`handan merge` (the files of sharded jobs) and `handan models`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from experiments.cli.common import (
    GENERATION_DEFAULTS,
    BatchSizeOpt,
    DataDirOpt,
    DeviceOpt,
    DtypeOpt,
    ItemsOpt,
    MaxNewTokensOpt,
    ModelOpt,
    SamplesOpt,
    SeedOpt,
    TemperatureOpt,
    TopPOpt,
    friendly_errors,
)

EngineOpt = Annotated[
    str, typer.Option(help="hf (handan's loop: capture and steering) or vllm (vLLM's offline LLM)")
]
MaxModelLenOpt = Annotated[
    int | None,
    typer.Option(help="context (prompt + generation); a budget past it is cut (default: spec's)"),
]
TensorParallelOpt = Annotated[int, typer.Option(help="vllm: GPUs one model is sharded over")]
GpuMemoryOpt = Annotated[float, typer.Option(help="vllm: share of each GPU's memory it may use")]
ShardOpt = Annotated[
    str | None,
    typer.Option(
        help="I/N: this job's share of the items (files get a .shard-I-of-N suffix; "
        "`handan merge` joins them)"
    ),
]
SitesOpt = Annotated[
    str, typer.Option(help="Comma-separated sites, e.g. resid_post.* or resid_post.3,mlp_out.3")
]
PositionsOpt = Annotated[
    str, typer.Option(help="prompt_end,think_open,think_close,answer_end,step_K")
]
StoreDtypeOpt = Annotated[str, typer.Option(help="float32, float16 or bfloat16")]


def _positions(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _check_capture(sites: str, positions: str) -> None:
    """The forms of --sites and --positions, refused before a model loads (whether a layer
    exists is checked once one has)."""
    from hooks.capture import parse_positions
    from hooks.sites import split_sites

    split_sites(sites)
    parse_positions(_positions(positions))


def _run(
    model_name,
    items,
    out,
    settings,
    device,
    dtype,
    data_dir,
    shard=None,
    store=None,
    sites="",
    positions="prompt_end",
    store_dtype="float32",
):
    from rich.console import Console

    from experiments.data import items_from
    from experiments.generation.engines import open_engine
    from experiments.generation.traces import generate_traces
    from experiments.models.specs import get_spec
    from hooks.sites import expand_sites

    spec = get_spec(model_name)
    cfg = settings.resolve(spec)  # checked before the model loads
    if store is not None:
        _check_capture(sites, positions)
    table = items_from(items, data_dir)
    engine, tokenizer = open_engine(spec, cfg, device=device, dtype=dtype)
    with engine:
        site_list = expand_sites(engine.model, sites) if store is not None else []
        traces = generate_traces(
            engine,
            tokenizer,
            spec,
            table,
            config=cfg,
            out=out,
            store=store,
            sites=site_list,
            positions=_positions(positions),
            store_dtype=store_dtype,
            shard=shard,
        )
    Console().print(
        f"{spec.name}: {len(traces)} traces → {out}; mean reasoning tokens "
        f"{traces['reasoning_tokens'].mean():.1f}, finished {traces['finished_thinking'].mean():.0%}, "
        f"accuracy {traces['correct'].mean():.0%}" + (f"; activations → {store}" if store else "")
    )


def _record_forced(
    model_name, traces, out, items, sites, positions, store_dtype, batch_size, device, dtype, shard
):
    from rich.console import Console

    from experiments.generation.forced import record_from_traces
    from experiments.models.loading import load_model
    from experiments.models.specs import get_spec
    from hooks.sites import expand_sites

    spec = get_spec(model_name)
    _check_capture(sites, positions)
    model, tokenizer = load_model(spec, device=device, dtype=dtype)
    store = record_from_traces(
        model,
        tokenizer,
        spec,
        traces,
        store=out,
        sites=expand_sites(model, sites),
        positions=_positions(positions),
        store_dtype=store_dtype,
        batch_size=batch_size,
        items=items,
        shard=shard,
    )
    summary = store.summary()
    Console().print(
        f"{spec.name}: {summary['n_traces']} traces of {store.manifest['capture']['traces_model']} "
        f"read (teacher-forced) → {out}; {summary['n_vectors']} vectors"
    )


def _settings(**kw):
    from experiments.generation import GenerationSettings

    return GenerationSettings(**kw)


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def generate(
        model: ModelOpt,
        items: ItemsOpt,
        out: Annotated[Path, typer.Option("--out", help="Traces parquet (resumed if it exists)")],
        samples: SamplesOpt = GENERATION_DEFAULTS.samples,
        max_new_tokens: MaxNewTokensOpt = None,
        temperature: TemperatureOpt = None,
        top_p: TopPOpt = None,
        seed: SeedOpt = GENERATION_DEFAULTS.seed,
        batch_size: BatchSizeOpt = GENERATION_DEFAULTS.batch_size,
        engine: EngineOpt = GENERATION_DEFAULTS.engine,
        max_model_len: MaxModelLenOpt = None,
        tensor_parallel_size: TensorParallelOpt = GENERATION_DEFAULTS.tensor_parallel_size,
        gpu_memory_utilization: GpuMemoryOpt = GENERATION_DEFAULTS.gpu_memory_utilization,
        shard: ShardOpt = None,
        device: DeviceOpt = None,
        dtype: DtypeOpt = None,
        data_dir: DataDirOpt = None,
    ) -> None:
        """Generate reasoning traces for an Items table and account every token."""
        from experiments.generation.shards import parse_shard, shard_path

        settings = _settings(
            samples=samples,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            batch_size=batch_size,
            engine=engine,
            max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
        )
        part = parse_shard(shard)
        _run(model, items, shard_path(out, part), settings, device, dtype, data_dir, part)

    @app.command()
    @friendly_errors
    def record(
        model: ModelOpt,
        out: Annotated[
            Path, typer.Option("--out", help="Activation store folder (resumed if it exists)")
        ],
        items: Annotated[
            str | None,
            typer.Option(
                help="Items table or dataset name (with --from-traces: only to build the "
                "prompts of a model whose tokenizer differs from the traces')"
            ),
        ] = None,
        from_traces: Annotated[
            Path | None,
            typer.Option(
                help="Record teacher-forced from this traces file's token ids (any engine, "
                "imported traces, another model's traces) instead of generating"
            ),
        ] = None,
        sites: SitesOpt = "resid_post.*",
        positions: PositionsOpt = "prompt_end",
        traces: Annotated[
            Path | None, typer.Option(help="Traces parquet; default STORE/traces.parquet")
        ] = None,
        store_dtype: StoreDtypeOpt = "float32",
        samples: SamplesOpt = GENERATION_DEFAULTS.samples,
        max_new_tokens: MaxNewTokensOpt = None,
        temperature: TemperatureOpt = None,
        top_p: TopPOpt = None,
        seed: SeedOpt = GENERATION_DEFAULTS.seed,
        batch_size: BatchSizeOpt = GENERATION_DEFAULTS.batch_size,
        max_model_len: MaxModelLenOpt = None,
        shard: ShardOpt = None,
        device: DeviceOpt = None,
        dtype: DtypeOpt = None,
        data_dir: DataDirOpt = None,
    ) -> None:
        """Record activations at reasoning landmarks into a store: while generating (hf engine),
        or teacher-forced over stored token ids (--from-traces)."""
        from experiments.errors import InputError
        from experiments.generation.shards import parse_shard, shard_path

        part = parse_shard(shard)
        out = shard_path(out, part)
        if from_traces is not None:
            if traces is not None:
                raise InputError(
                    "--traces names where generated traces go; with --from-traces "
                    "nothing is generated: drop --traces"
                )
            table = None
            if items is not None:
                from experiments.data import items_from

                table = items_from(items, data_dir)
            _record_forced(
                model,
                from_traces,
                out,
                table,
                sites,
                positions,
                store_dtype,
                batch_size,
                device,
                dtype,
                part,
            )
            return
        if items is None:
            raise InputError("record needs --items (what to generate) or --from-traces TRACES")
        settings = _settings(
            samples=samples,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            batch_size=batch_size,
            max_model_len=max_model_len,
        )
        out.mkdir(parents=True, exist_ok=True)
        _run(
            model,
            items,
            traces or out / "traces.parquet",
            settings,
            device,
            dtype,
            data_dir,
            part,
            store=out,
            sites=sites,
            positions=positions,
            store_dtype=store_dtype,
        )

    @app.command()
    @friendly_errors
    def merge(
        inputs: Annotated[
            list[Path], typer.Argument(help="the shards' traces files, or their store folders")
        ],
        out: Annotated[Path, typer.Option("--out", help="merged traces file or store folder")],
    ) -> None:
        """Join the files of `--shard I/N` jobs (traces files or stores), checking that every
        shard ran with the same settings and that none is missing or repeated."""
        from rich.console import Console

        from experiments.generation.merge import merge_outputs

        Console().print(merge_outputs(inputs, out))

    @app.command()
    @friendly_errors
    def models(
        name: Annotated[
            str | None, typer.Argument(help="a registry name or YAML spec: every setting")
        ] = None,
    ) -> None:
        """List the registered model specs: pinned revision, context (prompt + generation; "config":
        the model config's), ids that end generation besides the tokenizer's EOS ("eos": none).
        With NAME: every setting of that spec and the source of each."""
        from rich.console import Console
        from rich.table import Table

        from experiments.models.specs import REGISTRY, get_spec

        if name is not None:
            spec = get_spec(name)
            table = Table("setting", "value", "source")
            for key, value in spec.model_dump(exclude={"notes"}).items():
                table.add_row(key, str(value), spec.notes.get(key, ""))
            for key in sorted(set(spec.notes) - set(spec.model_dump())):
                table.add_row(key, "", spec.notes[key])
            Console().print(table)
            return
        table = Table("name", "role", "source", "revision", "context", "stop ids", "think")
        for spec in REGISTRY.values():
            table.add_row(
                spec.name,
                spec.role or "",
                spec.source,
                (spec.revision or "")[:12],
                str(spec.max_model_len or "config"),
                " ".join(map(str, spec.stop_token_ids)) or "eos",
                f"{spec.think_open} … {spec.think_close}" if spec.has_think else "none",
            )
        Console().print(table)
