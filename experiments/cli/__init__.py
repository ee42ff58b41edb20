"""The `handan` command: one module per command group, each with ``register(app)`` (the one
registration pattern). Heavy imports stay inside the command bodies, so `handan --help` is instant."""

from __future__ import annotations

import typer

from experiments.cli import behaviour, data, generate, organism, probe, run, steer, store, traces

app = typer.Typer(
    name="handan",
    help="Probe whether reasoning models allocate thinking by difficulty, and whether distilled students do.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

for _module in (run, organism, data, generate, traces, behaviour, store, probe, steer):
    _module.register(app)
