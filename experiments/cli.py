"""The `handan` command. Each feature registers its commands from a light module
(`experiments/cli_*.py`); heavy imports stay inside the command bodies so `handan --help` is instant."""
from __future__ import annotations

import typer

app = typer.Typer(
    name="handan",
    help="Probe whether reasoning models allocate thinking by difficulty, and whether distilled students do.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from experiments import (
        cli_behaviour,
        cli_data,
        cli_generate,
        cli_organism,
        cli_probe,
        cli_run,
        cli_steer,
        cli_store,
    )

    for module in (cli_run, cli_organism, cli_data, cli_generate, cli_behaviour, cli_store, cli_probe, cli_steer):
        module.register(app)


_register()
