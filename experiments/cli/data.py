"""`handan data ...`: list, fetch, export and summarise the human-cost datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from experiments.cli.common import friendly_errors
from experiments.errors import InputError

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="HANDAN_DATA_DIR",
        help="Mirror folder (OWNER/REPO/PATH layout); default: download from the pinned commit.",
    ),
]
Name = Annotated[str, typer.Argument(help="Dataset name (see `handan data list`).")]

data_app = typer.Typer(help="Human reaction-time datasets as Items tables.", no_args_is_help=True)


@data_app.command("list")
@friendly_errors
def list_datasets() -> None:
    """Name, items per task, source (repo @ commit) and licence of every dataset."""
    from rich.console import Console
    from rich.table import Table

    from experiments.data import DATASETS

    table = Table("name", "items", "tasks", "source", "licence")
    for spec in DATASETS.values():
        table.add_row(
            spec.name,
            str(sum(spec.n_items.values())),
            ", ".join(f"{t} ({n})" for t, n in spec.n_items.items()),
            f"{spec.repo}@{spec.commit[:12]}",
            spec.licence,
        )
    Console(width=200).print(table)


@data_app.command("fetch")
@friendly_errors
def fetch_dataset(name: Name, data_dir: DataDir = None) -> None:
    """Download (or verify in the mirror) every file of a dataset against its sha256."""
    from experiments.data.fetch import fetch
    from experiments.data.registry import get_dataset

    files = fetch(get_dataset(name), data_dir)
    typer.echo(f"{name}: {len(files)} file(s) verified")
    for path in list(files.values())[:3]:
        typer.echo(f"  {path}")


@data_app.command("export")
@friendly_errors
def export_dataset(
    name: Name,
    out: Annotated[Path, typer.Option("--out", help="Output Items table (.parquet or .csv).")],
    data_dir: DataDir = None,
) -> None:
    """Write a dataset's Items table to a parquet or CSV file."""
    from experiments.data import load_items

    if out.suffix not in {".parquet", ".csv"}:
        raise InputError(f"--out {out}: use a .parquet or .csv file name")
    items = load_items(name, data_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        from experiments.contracts import write_parquet_atomic

        write_parquet_atomic(items, out)
    else:
        items.to_csv(out, index=False)
    typer.echo(f"wrote {len(items)} items to {out}")


@data_app.command("show")
@friendly_errors
def show_dataset(name: Name, data_dir: DataDir = None) -> None:
    """Per task: item count, RT distribution (s) and mean human accuracy."""
    from rich.console import Console
    from rich.table import Table

    from experiments.data import load_items

    items = load_items(name, data_dir)
    table = Table(
        "task",
        "items",
        "with RT",
        "RT min",
        "RT q25",
        "RT median",
        "RT q75",
        "RT max",
        "accuracy mean",
        title=f"{name}: human cost (seconds)",
    )
    for task, group in items.groupby("task", sort=True):
        rt = group["human_rt_s"].dropna()
        q = rt.quantile([0, 0.25, 0.5, 0.75, 1]).tolist() if len(rt) else [float("nan")] * 5
        table.add_row(
            str(task),
            str(len(group)),
            str(len(rt)),
            *(f"{v:.2f}" for v in q),
            f"{group['human_accuracy'].mean():.3f}",
        )
    Console(width=200).print(table)


def register(app: typer.Typer) -> None:
    """Add the `data` sub-command group to the `handan` app."""
    app.add_typer(data_app, name="data")
