"""`handan organism ...`: train the model organism and describe the trained checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from experiments.cli.common import friendly_errors
from experiments.errors import MissingInput

organism_app = typer.Typer(
    help="The model organism: an RL-trained teacher, a baseline that reasons in plain text and "
    "the student distilled from the teacher into the baseline, on five tasks with human "
    "reaction times; one triple per seed.",
    no_args_is_help=True,
)

SHORT_TASKS = {
    "binary_add": "add",
    "binary_sub": "sub",
    "relational_3ps": "3ps",
    "relational_4ps": "4ps",
    "relational_carddir": "card",
}


@organism_app.command("train")
@friendly_errors
def train(
    out: Annotated[
        Path | None,
        typer.Option(help="output folder (default: the shipped checkpoints' seed{SEED} folder)"),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of every stage")] = 0,
    fast: Annotated[bool, typer.Option(help="tiny budget (seconds per stage), for tests")] = False,
    device: Annotated[str, typer.Option(help="where to train: cpu or cuda")] = "cpu",
    threads: Annotated[int, typer.Option(min=1, help="CPU threads while training")] = 1,
) -> None:
    """Train one triple: teacher (SFT + RL), baseline (SFT) and student (SFT on teacher traces)."""
    import json

    from rich.console import Console

    from experiments.models.organism.layout import seed_dir
    from experiments.models.organism.train import train_all

    folder = Path(out or seed_dir(seed))
    paths = train_all(
        folder, seed=seed, budget="fast" if fast else "full", device=device, threads=threads
    )
    summary = json.loads((folder / "training.json").read_text())
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
        typer.Option("--dir", help="folder written by `handan organism train` (default: shipped)"),
    ] = None,
    seed: Annotated[int, typer.Option(help="which shipped seed, when --dir is not given")] = 0,
) -> None:
    """Sizes, accuracies and reasoning-length statistics of one trained organism triple."""
    import json

    from rich.console import Console
    from rich.table import Table

    from experiments.models.organism.layout import checkpoint_dir, seed_dir

    folder = Path(root or seed_dir(seed))
    # names the fix when nothing was trained there (--out FOLDER, or --seed N for the shipped)
    checkpoint_dir("teacher", root) if root else checkpoint_dir(f"teacher-s{seed}")
    summary_path = folder / "training.json"
    if not summary_path.exists():
        raise MissingInput(
            f"{summary_path} is missing; rerun `handan organism train --out {folder}`"
        )
    summary = json.loads(summary_path.read_text())
    table = Table(
        title=f"organism in {folder} (seed {summary['seed']}, budget {summary['budget']})"
    )
    tasks = [t for t in SHORT_TASKS if t in next(iter(summary["models"].values()))["accuracy"]]
    header = ["role", "MB", *(f"acc {SHORT_TASKS[t]}" for t in tasks)]
    for column in (*header, "reasoning tokens mean (sd)", "range", "rho work steps"):
        table.add_column(column)
    for role, result in summary["models"].items():
        weights = folder / role / "model.safetensors"  # the shipped seeds omit teacher_sft
        size = f"{weights.stat().st_size / 2**20:.1f}" if weights.exists() else "-"
        rt = result["reasoning_tokens"]
        rhos = [v for v in rt["spearman_feat_work_steps"].values() if v is not None]
        table.add_row(
            role,
            size,
            *(f"{result['accuracy'][t]:.3f}" for t in tasks),
            f"{rt['mean']:.1f} ({rt['sd'] or 0:.1f})",
            f"{rt['min']}-{rt['max']}",
            f"{sum(rhos) / len(rhos):.2f} (mean of {len(rhos)} tasks)" if rhos else "-",
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
