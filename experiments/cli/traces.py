"""`handan traces import`: traces made elsewhere (an API, a public dataset, another lab's vLLM
run) → a handan traces file of a registered model, tokens re-counted with its tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from experiments.cli.common import DataDirOpt, ItemsOpt, ModelOpt, friendly_errors

traces_app = typer.Typer(help="Traces made elsewhere", no_args_is_help=True)


@traces_app.command("import")
@friendly_errors
def import_(
    file: Annotated[Path, typer.Argument(help="JSONL (one record a line) or parquet of traces")],
    model: ModelOpt,
    items: ItemsOpt,
    out: Annotated[Path, typer.Option("--out", help="Traces parquet to write")],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="deepseek (reasoning_content + content) or generic (reasoning + response, or text)",
        ),
    ] = "deepseek",
    field: Annotated[
        list[str] | None,
        typer.Option(help="KEY=NAME: read field NAME for KEY (item_id, sample, reasoning, ...)"),
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Import traces: items checked against the Items table, tokens re-counted with the model's
    tokenizer, accounting and grading as for generated traces (README, "Imported traces")."""
    from rich.console import Console

    from experiments.data import items_from
    from experiments.errors import InputError
    from experiments.generation.engines import load_tokenizer
    from experiments.generation.imports import import_traces
    from experiments.models.specs import get_spec

    fields = {}
    for pair in field or []:
        key, sep, name = pair.partition("=")
        if not sep or not key or not name:
            raise InputError(f"--field {pair!r}: give KEY=NAME, e.g. --field reasoning=thinking")
        fields[key] = name
    spec = get_spec(model)
    table = import_traces(
        file,
        load_tokenizer(spec),
        spec,
        items_from(items, data_dir),
        out=out,
        fmt=format,
        fields=fields,
    )
    Console().print(
        f"{spec.name}: {len(table)} imported traces → {out}; mean reasoning tokens "
        f"{table['reasoning_tokens'].mean():.1f} (re-encoded), finished "
        f"{table['finished_thinking'].mean():.0%}, accuracy {table['correct'].mean():.0%}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(traces_app, name="traces")
