"""`handan run CONFIG.yaml` and `handan demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from experiments.cli.common import friendly_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def run(
        config: Annotated[
            Path, typer.Argument(help="Run config YAML (see experiments/pipeline/configs/)")
        ],
        out: Annotated[
            Path | None, typer.Option(help="Output folder (overrides the config's `out`)")
        ] = None,
        data_dir: Annotated[
            Path | None, typer.Option(envvar="HANDAN_DATA_DIR", help="Human-data mirror")
        ] = None,
    ) -> None:
        """Run the whole pipeline for the models and datasets of CONFIG."""
        from experiments.pipeline import RunConfig, run_pipeline

        overrides = {k: str(v) for k, v in (("out", out), ("data_dir", data_dir)) if v is not None}
        run_pipeline(RunConfig.from_yaml(config, **overrides), source=str(config))

    @app.command()
    @friendly_errors
    def demo(
        out: Annotated[Path, typer.Option(help="Output folder")] = Path("handan-demo"),
        fast: Annotated[
            bool, typer.Option(help="Fewer samples/permutations: a quick smoke run")
        ] = False,
        retrain: Annotated[
            bool, typer.Option(help="Retrain every organism seed into OUT/organism first")
        ] = False,
        data_dir: Annotated[
            Path | None, typer.Option(envvar="HANDAN_DATA_DIR", help="Human-data mirror")
        ] = None,
    ) -> None:
        """The whole hypothesis test on the model organism, offline: generation with capture,
        behaviour, probes, steering and a report in OUT/report.md."""
        from experiments.pipeline import RunConfig, run_pipeline
        from experiments.pipeline.config import DEMO_CONFIG, FAST, deep_merge, read_yaml_mapping

        raw = read_yaml_mapping(DEMO_CONFIG)
        if fast:
            raw = deep_merge(raw, FAST)
        raw["out"] = str(out)
        if data_dir is not None:
            raw["data_dir"] = str(data_dir)
        if retrain:
            from experiments.models.organism.train import train_seeds
            from experiments.models.specs import ORGANISM_SEEDS

            budget = "fast" if fast else "full"
            raw["model_sources"] = train_seeds(out / "organism", ORGANISM_SEEDS, budget=budget)
        run_pipeline(RunConfig.from_mapping(raw, source=str(DEMO_CONFIG)))
