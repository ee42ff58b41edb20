"""`handan run CONFIG.yaml` and `handan demo`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from experiments.cli_common import friendly_errors

DEMO_CONFIG = Path(__file__).parent / "configs" / "demo.yaml"
# --fast: the same pipeline with fewer samples, permutations and bootstrap draws (a smoke run).
FAST = {"generation": {"samples": 2, "batch_size": 128, "seed": 0},
        "behaviour": {"n_boot": 300},
        "probes": {"targets": ["human_rt", "reasoning_tokens", "reasoning_tokens|human_rt"],
                   "n_permutations": 20, "n_boot": 200},
        "steering": {"alphas": [-1.0, 0.0, 1.0], "n_random": 2, "samples": 1}}


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def run(
        config: Annotated[Path, typer.Argument(help="Run config YAML (see experiments/configs/)")],
        out: Annotated[Path | None, typer.Option(help="Output folder (overrides the config's `out`)")] = None,
        data_dir: Annotated[Path | None, typer.Option(envvar="HANDAN_DATA_DIR", help="Human-data mirror")] = None,
    ) -> None:
        """Run the whole pipeline for the models and datasets of CONFIG."""
        from experiments.pipeline import RunConfig, run_pipeline

        overrides = {k: str(v) for k, v in (("out", out), ("data_dir", data_dir)) if v is not None}
        run_pipeline(RunConfig.from_yaml(config, **overrides))

    @app.command()
    @friendly_errors
    def demo(
        out: Annotated[Path, typer.Option(help="Output folder")] = Path("handan-demo"),
        fast: Annotated[bool, typer.Option(help="Fewer samples/permutations: a quick smoke run")] = False,
        retrain: Annotated[bool, typer.Option(help="Retrain the organism into OUT/organism first")] = False,
        data_dir: Annotated[Path | None, typer.Option(envvar="HANDAN_DATA_DIR", help="Human-data mirror")] = None,
    ) -> None:
        """The whole hypothesis test on the model organism, offline: generation with capture,
        behaviour, probes, steering and a report in OUT/report.md."""
        import yaml

        from experiments.pipeline import RunConfig, run_pipeline

        raw = yaml.safe_load(DEMO_CONFIG.read_text())
        if fast:
            raw |= FAST
        raw["out"] = str(out)
        if data_dir is not None:
            raw["data_dir"] = str(data_dir)
        if retrain:
            from experiments.organism import train_all

            paths = train_all(out / "organism", budget="fast" if fast else "full")
            raw["model_sources"] = {f"organism-{role}": str(p) for role, p in paths.items()}
        run_pipeline(RunConfig.model_validate(raw))
