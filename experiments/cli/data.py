"""`handan data ...`: list, fetch, export and summarise the human-cost datasets; import a user's
trials; regenerate the Items tables shipped in the package."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from experiments.cli.common import console, friendly_errors
from experiments.errors import InputError

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="HANDAN_DATA_DIR",
        help="Mirror folder of the raw files (OWNER/REPO/PATH layout); default: the table "
        "shipped in the package (binary, relational), else download from the pinned commit.",
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
    _write_items(items, out)
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


@data_app.command("import")
@friendly_errors
def import_trials_command(
    trials: Annotated[Path, typer.Argument(help="Trial file (.csv, .tsv or .parquet).")],
    out: Annotated[Path, typer.Option("--out", help="Output Items table (.parquet or .csv).")],
    mapping: Annotated[
        Path | None, typer.Option(help="YAML with the same keys (rt_unit, task_col, ...).")
    ] = None,
    item: Annotated[
        list[str] | None, typer.Option(help="Column(s) identifying an item (repeatable).")
    ] = None,
    participant: Annotated[str | None, typer.Option(help="Participant column.")] = None,
    rt: Annotated[str | None, typer.Option(help="Reaction-time column.")] = None,
    rt_unit: Annotated[str | None, typer.Option(help="Unit of --rt: ms or s.")] = None,
    correct: Annotated[
        str | None, typer.Option(help="Boolean-like correctness column (or --response).")
    ] = None,
    response: Annotated[
        str | None, typer.Option(help="Response column, correct when equal to the answer.")
    ] = None,
    answer: Annotated[str | None, typer.Option(help="Answer column.")] = None,
    answer_template: Annotated[
        str | None, typer.Option(help='Answer from other columns: "... {col} ...".')
    ] = None,
    task: Annotated[str | None, typer.Option(help="Task name of every item.")] = None,
    task_col: Annotated[str | None, typer.Option(help="Task column.")] = None,
    prompt: Annotated[str | None, typer.Option(help="Prompt column.")] = None,
    prompt_template: Annotated[
        str | None, typer.Option(help='Prompt from columns: "... {col} ...".')
    ] = None,
    feature: Annotated[
        list[str] | None, typer.Option(help="Item feature column -> feat_COL (repeatable).")
    ] = None,
    prompt_from: Annotated[
        str | None,
        typer.Option(help="first: where wording differs within an item, the first participant's."),
    ] = None,
) -> None:
    """Aggregate a trial file (one row per participant x item) into an Items table by handan's
    rule, and write OUT's exclusions beside it (OUT stem + .exclusions.csv)."""
    from experiments.data.trial_mapping import load_mapping
    from experiments.data.trials import import_trials_file

    if out.suffix not in {".parquet", ".csv"}:
        raise InputError(f"--out {out}: use a .parquet or .csv file name")
    given = {
        "item": item or None,
        "participant": participant,
        "rt": rt,
        "rt_unit": rt_unit,
        "correct": correct,
        "response": response,
        "answer": answer,
        "answer_template": answer_template,
        "task": task,
        "task_col": task_col,
        "prompt": prompt,
        "prompt_template": prompt_template,
        "feature": feature or None,
        "prompt_from": prompt_from,
    }
    keys = load_mapping(mapping) if mapping is not None else {}
    keys |= {k: v for k, v in given.items() if v is not None}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = import_trials_file(trials, keys)
    for warning in caught:
        console.print(f"[yellow]warning:[/] {warning.message}", highlight=False, soft_wrap=True)
    _write_items(result.items, out)
    excluded = out.with_name(f"{out.stem}.exclusions.csv")
    result.exclusions.to_csv(excluded, index=False)
    n_tasks = result.items["task"].nunique()
    typer.echo(f"wrote {len(result.items)} items ({n_tasks} task(s)) to {out}")
    for row in result.exclusions.itertuples():
        if row.trials or row.items:
            typer.echo(f"  {row.reason}: {row.trials} trial(s), {row.items} item(s): {row.effect}")
    typer.echo(f"exclusions: {excluded}")


@data_app.command("embed")
@friendly_errors
def embed_datasets(data_dir: DataDir = None) -> None:
    """Rebuild the Items tables shipped in the package (binary, relational) from the raw files,
    with their PROVENANCE.md (run after changing a loader or the aggregation)."""
    from experiments.data.embedded import write_embedded

    for path in write_embedded(data_dir):
        typer.echo(f"wrote {path}")


def _write_items(items, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        from experiments.contracts import write_parquet_atomic

        write_parquet_atomic(items, out)
    else:
        items.to_csv(out, index=False)


def register(app: typer.Typer) -> None:
    """Add the `data` sub-command group to the `handan` app."""
    app.add_typer(data_app, name="data")
