"""`handan store ...`: inspect an activation store (see hooks/store.py for its layout)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from experiments.cli.common import friendly_errors

store_app = typer.Typer(
    help="Inspect activation stores written by `handan record`.", no_args_is_help=True
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


def register(app: typer.Typer) -> None:
    """Add the `store` command group to the handan CLI."""
    app.add_typer(store_app, name="store")
