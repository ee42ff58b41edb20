"""`handan generate` (traces) and `handan record` (traces + activation store)."""

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


def _run(
    model_name,
    items,
    out,
    settings,
    device,
    dtype,
    data_dir,
    store=None,
    sites="",
    positions="prompt_end",
    store_dtype="float32",
):
    from rich.console import Console

    from experiments.data import items_from
    from experiments.generation.traces import generate_traces
    from experiments.models.loading import load_model
    from experiments.models.specs import get_spec
    from hooks.sites import expand_sites

    spec = get_spec(model_name)
    cfg = settings.resolve(spec)  # checked before the model loads
    table = items_from(items, data_dir)
    model, tokenizer = load_model(spec, device=device, dtype=dtype)
    site_list = expand_sites(model, sites) if store is not None else []
    traces = generate_traces(
        model,
        tokenizer,
        spec,
        table,
        config=cfg,
        out=out,
        store=store,
        sites=site_list,
        positions=[p.strip() for p in positions.split(",") if p.strip()],
        store_dtype=store_dtype,
    )
    Console().print(
        f"{spec.name}: {len(traces)} traces → {out}; mean reasoning tokens "
        f"{traces['reasoning_tokens'].mean():.1f}, finished {traces['finished_thinking'].mean():.0%}, "
        f"accuracy {traces['correct'].mean():.0%}" + (f"; activations → {store}" if store else "")
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
        device: DeviceOpt = None,
        dtype: DtypeOpt = None,
        data_dir: DataDirOpt = None,
    ) -> None:
        """Generate reasoning traces for an Items table and account every token."""
        settings = _settings(
            samples=samples,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            batch_size=batch_size,
        )
        _run(model, items, out, settings, device, dtype, data_dir)

    @app.command()
    @friendly_errors
    def record(
        model: ModelOpt,
        items: ItemsOpt,
        out: Annotated[
            Path, typer.Option("--out", help="Activation store folder (resumed if it exists)")
        ],
        sites: Annotated[
            str,
            typer.Option(help="Comma-separated sites, e.g. resid_post.* or resid_post.3,mlp_out.3"),
        ] = "resid_post.*",
        positions: Annotated[
            str, typer.Option(help="prompt_end,think_open,think_close,answer_end,step_K")
        ] = "prompt_end",
        traces: Annotated[
            Path | None, typer.Option(help="Traces parquet; default STORE/traces.parquet")
        ] = None,
        store_dtype: Annotated[str, typer.Option(help="float32, float16 or bfloat16")] = "float32",
        samples: SamplesOpt = GENERATION_DEFAULTS.samples,
        max_new_tokens: MaxNewTokensOpt = None,
        temperature: TemperatureOpt = None,
        top_p: TopPOpt = None,
        seed: SeedOpt = GENERATION_DEFAULTS.seed,
        batch_size: BatchSizeOpt = GENERATION_DEFAULTS.batch_size,
        device: DeviceOpt = None,
        dtype: DtypeOpt = None,
        data_dir: DataDirOpt = None,
    ) -> None:
        """Generate traces and record activations at reasoning landmarks into a store."""
        settings = _settings(
            samples=samples,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            batch_size=batch_size,
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
            store=out,
            sites=sites,
            positions=positions,
            store_dtype=store_dtype,
        )

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
