"""`handan generate` (traces) and `handan record` (traces + activation store)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from experiments.cli_common import friendly_errors

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Registry name (see `handan models`) or a spec .yaml")]
ItemsOpt = Annotated[str, typer.Option("--items", help="Items table (.parquet/.csv) or a dataset name (`handan data list`)")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", envvar="HANDAN_DATA_DIR", help="Local mirror of the human data")]


def _run(model_name, items, out, samples, max_new_tokens, temperature, top_p, seed, batch_size,
         device, dtype, data_dir, store=None, sites="", positions="prompt_end", store_dtype="float32"):
    from rich.console import Console

    from experiments.generation import GenerationConfig, generate_traces
    from experiments.loading import load_model
    from experiments.specs import get_spec
    from experiments.tasks import items_from
    from hooks.sites import expand_sites

    spec = get_spec(model_name)
    table = items_from(items, data_dir)
    model, tokenizer = load_model(spec, device=device, dtype=dtype)
    cfg = GenerationConfig.from_spec(spec, samples=samples, max_new_tokens=max_new_tokens,
                                     temperature=temperature, top_p=top_p, seed=seed, batch_size=batch_size)
    site_list = expand_sites(model, sites) if store is not None else []
    traces = generate_traces(model, tokenizer, spec, table, config=cfg, out=out, store=store,
                             sites=site_list, positions=[p.strip() for p in positions.split(",") if p.strip()],
                             store_dtype=store_dtype)
    Console().print(
        f"{spec.name}: {len(traces)} traces → {out}; mean reasoning tokens "
        f"{traces['reasoning_tokens'].mean():.1f}, finished {traces['finished_thinking'].mean():.0%}, "
        f"accuracy {traces['correct'].mean():.0%}" + (f"; activations → {store}" if store else "")
    )


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def generate(
        model: ModelOpt,
        items: ItemsOpt,
        out: Annotated[Path, typer.Option("--out", help="Traces parquet (resumed if it exists)")],
        samples: Annotated[int, typer.Option(min=1)] = 1,
        max_new_tokens: Annotated[int | None, typer.Option(help="Budget; default from the spec")] = None,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int = 0,
        batch_size: Annotated[int, typer.Option(min=1)] = 16,
        device: str | None = None,
        dtype: str | None = None,
        data_dir: DataDirOpt = None,
    ) -> None:
        """Generate reasoning traces for an Items table and account every token."""
        _run(model, items, out, samples, max_new_tokens, temperature, top_p, seed, batch_size,
             device, dtype, data_dir)

    @app.command()
    @friendly_errors
    def record(
        model: ModelOpt,
        items: ItemsOpt,
        out: Annotated[Path, typer.Option("--out", help="Activation store folder (resumed if it exists)")],
        sites: Annotated[str, typer.Option(help="Comma-separated sites, e.g. resid_post.* or resid_post.3,mlp_out.3")] = "resid_post.*",
        positions: Annotated[str, typer.Option(help="prompt_end,think_open,think_close,answer_end,step_K")] = "prompt_end",
        traces: Annotated[Path | None, typer.Option(help="Traces parquet; default STORE/traces.parquet")] = None,
        store_dtype: Annotated[str, typer.Option(help="float32, float16 or bfloat16")] = "float32",
        samples: Annotated[int, typer.Option(min=1)] = 1,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int = 0,
        batch_size: Annotated[int, typer.Option(min=1)] = 16,
        device: str | None = None,
        dtype: str | None = None,
        data_dir: DataDirOpt = None,
    ) -> None:
        """Generate traces and record activations at reasoning landmarks into a store."""
        out.mkdir(parents=True, exist_ok=True)
        _run(model, items, traces or out / "traces.parquet", samples, max_new_tokens, temperature,
             top_p, seed, batch_size, device, dtype, data_dir, store=out, sites=sites,
             positions=positions, store_dtype=store_dtype)

    @app.command()
    def models() -> None:
        """List the registered model specs."""
        from rich.console import Console
        from rich.table import Table

        from experiments.specs import REGISTRY

        table = Table("name", "role", "family", "source", "think")
        for spec in REGISTRY.values():
            table.add_row(spec.name, spec.role or "", spec.family or "", spec.source,
                          f"{spec.think_open} … {spec.think_close}" if spec.has_think else "none")
        Console().print(table)
