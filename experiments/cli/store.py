"""`handan store ...`: inspect, verify and repair an activation store (see hooks/store.py for its
layout, hooks/store_verify.py for what verify checks and repair removes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from experiments.cli.common import friendly_errors

store_app = typer.Typer(
    help="Inspect, verify and repair activation stores written by `handan record`.",
    no_args_is_help=True,
)


@store_app.command("info")
@friendly_errors
def info(store: Annotated[Path, typer.Argument(help="Activation store folder.")]) -> None:
    """Print the store's manifest and the saved / absent vectors per site and position."""
    from rich.console import Console
    from rich.table import Table

    from hooks.store import ActivationStore

    summary = ActivationStore(store).summary()
    console = Console()
    manifest = Table(title=f"Activation store {summary['path']}", show_header=False)
    manifest.add_column("key", style="bold")
    manifest.add_column("value")
    for key, value in summary["manifest"].items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        manifest.add_row(key, shown)
    for key in ("n_traces", "n_items", "n_vectors", "n_absent", "n_shards"):
        manifest.add_row(key, str(summary[key]))
    manifest.add_row("size", f"{summary['bytes'] / 2**20:.2f} MiB")
    console.print(manifest)
    counts = Table(title="Vectors per site and position")
    for column in ("site", "position", "saved", "absent"):
        counts.add_column(column, justify="right" if column in ("saved", "absent") else "left")
    for row in summary["counts"]:
        counts.add_row(row["site"], row["position"], str(row["saved"]), str(row["absent"]))
    console.print(counts)


@store_app.command("verify")
@friendly_errors
def verify(store: Annotated[Path, typer.Argument(help="Activation store folder.")]) -> None:
    """Check every shard against the size and sha256 recorded when it was written, and the index
    parts against each other. Exit 0 when clean; exit 2 with one line per problem."""
    from experiments.cli.common import console
    from experiments.errors import MissingInput
    from hooks.store_format import MANIFEST
    from hooks.store_verify import verify as check

    if not (store / MANIFEST).exists():
        raise MissingInput(f"{store} is not an activation store (no {MANIFEST})")
    report = check(store)
    for line in report.lines():
        console.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
    if report.problems:
        raise typer.Exit(code=2)
    note = ""
    if report.unchecked:
        note = (
            f"; {len(report.unchecked)} shard(s) have no checksums recorded (written by an older "
            "handan): checked against their safetensors headers only"
        )
    typer.echo(
        f"{store}: {report.n_parts} index parts and {report.n_shards} shards verified, "
        f"no problem{note}"
    )


@store_app.command("repair")
@friendly_errors
def repair(store: Annotated[Path, typer.Argument(help="Activation store folder.")]) -> None:
    """Remove the index parts whose shards are missing or damaged and the shards no part
    references, so that rerunning `handan record` with the same settings recomputes them."""
    from experiments.errors import MissingInput
    from hooks.store_format import MANIFEST
    from hooks.store_verify import repair as fix

    if not (store / MANIFEST).exists():
        raise MissingInput(f"{store} is not an activation store (no {MANIFEST})")
    done = fix(store)
    for line in done["problems"]:
        typer.echo(f"found: {line}")
    if not done["parts"] and not done["shards"]:
        typer.echo(f"{store}: nothing to repair")
        return
    pairs = "an unknown number of" if done["pairs"] is None else str(done["pairs"])
    typer.echo(
        f"{store}: removed {len(done['parts'])} index part(s) ({pairs} (item, sample) pairs) and "
        f"{len(done['shards'])} shard(s); rerun `handan record` with the same settings to "
        "recompute them"
    )


def register(app: typer.Typer) -> None:
    """Add the `store` command group to the handan CLI."""
    app.add_typer(store_app, name="store")
