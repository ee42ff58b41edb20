"""`handan organism ...`: train the model organism and describe the trained checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from experiments.cli.common import friendly_errors
from experiments.errors import MissingInput

organism_app = typer.Typer(
    help="The model organism: an RL-trained teacher, a direct-answer baseline and the student "
    "distilled from the teacher, on the 4-bit binary arithmetic items.",
    no_args_is_help=True,
)


@organism_app.command("train")
@friendly_errors
def train(
    out: Annotated[
        Path | None, typer.Option(help="output folder (default: the shipped checkpoints folder)")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of every stage")] = 0,
    fast: Annotated[bool, typer.Option(help="tiny budget (seconds per stage), for tests")] = False,
    device: Annotated[str, typer.Option(help="where to train: cpu or cuda")] = "cpu",
) -> None:
    """Train teacher (SFT + RL), baseline (SFT) and student (SFT on teacher traces)."""
    import json

    from rich.console import Console

    from experiments.models.organism.train import SHIPPED, train_all

    paths = train_all(out or SHIPPED, seed=seed, budget="fast" if fast else "full", device=device)
    summary = json.loads((Path(out or SHIPPED) / "training.json").read_text())
    console = Console()
    for role, path in paths.items():
        acc = summary["models"][role]["accuracy"]["all"]
        console.print(f"{role:12s} {path}  accuracy {acc:.3f}")
    console.print(f"total wall time {summary['wall_s']['total']:.0f} s")


@organism_app.command("info")
@friendly_errors
def info(
    root: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="folder written by `handan organism train` (default: the shipped one)"
        ),
    ] = None,
) -> None:
    """Sizes, accuracies and reasoning-length statistics of trained organism checkpoints."""
    import json

    from rich.console import Console
    from rich.table import Table

    from experiments.models.organism.train import SHIPPED, checkpoint_dir

    folder = Path(root or SHIPPED)
    checkpoint_dir("teacher", folder)  # names the fix when nothing was trained there
    summary_path = folder / "training.json"
    if not summary_path.exists():
        raise MissingInput(
            f"{summary_path} is missing; rerun `handan organism train --out {folder}`"
        )
    summary = json.loads(summary_path.read_text())
    table = Table(
        title=f"organism in {folder} (seed {summary['seed']}, budget {summary['budget']})"
    )
    for column in (
        "role",
        "MB",
        "acc add",
        "acc sub",
        "reasoning tokens mean (sd)",
        "range",
        "rho carries",
        "rho work cols",
    ):
        table.add_column(column)
    for role, result in summary["models"].items():
        size = (folder / role / "model.safetensors").stat().st_size / 2**20
        rt = result["reasoning_tokens"]

        def rho(key: str, rt: dict = rt) -> str:
            return "-" if rt[key] is None else f"{rt[key]:.2f}"

        table.add_row(
            role,
            f"{size:.1f}",
            f"{result['accuracy'].get('binary_add', float('nan')):.3f}",
            f"{result['accuracy'].get('binary_sub', float('nan')):.3f}",
            f"{rt['mean']:.1f} ({rt['sd']:.1f})",
            f"{rt['min']}-{rt['max']}",
            rho("spearman_feat_carries"),
            rho("spearman_feat_work_columns"),
        )
    console = Console()
    console.print(table)
    walls = ", ".join(f"{k} {v:.0f} s" for k, v in summary["wall_s"].items())
    console.print(f"wall time: {walls} ({summary['device']}, {summary['threads']} threads)")
    kept = summary["distill_traces"]
    console.print(f"distillation traces kept: {kept['kept']} of {kept['sampled']}")


def register(app: typer.Typer) -> None:
    """Add the `organism` command group."""
    app.add_typer(organism_app, name="organism")
