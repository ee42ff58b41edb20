"""`handan behaviour`: alignment of reasoning cost with human cost, teacher vs student vs baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from experiments.cli.common import console, friendly_errors
from experiments.errors import InputError


def _parse_roles(pairs: list[str]) -> dict[str, str]:
    roles = {}
    for pair in pairs:
        model, sep, role = pair.rpartition("=")
        if not sep or not model or not role:
            raise InputError(
                f"--roles {pair!r}: write it as MODEL=ROLE, e.g. organism-teacher=teacher"
            )
        roles[model] = role
    return roles


def behaviour(
    items: Annotated[Path, typer.Option(help="Items table (.parquet/.csv) with human_rt_s.")],
    traces: Annotated[
        Path, typer.Option(help="Traces table (.parquet/.csv) from `handan generate`.")
    ],
    out: Annotated[Path, typer.Option(help="Output folder for the CSVs and figures/.")],
    pairs: Annotated[
        Path | None, typer.Option(help="PAIRS.yaml naming teacher/student/baseline triples.")
    ] = None,
    roles: Annotated[
        list[str] | None,
        typer.Option(
            help="MODEL=ROLE (teacher|student|baseline), repeatable; used without --pairs."
        ),
    ] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for the CIs (0 = none).")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    figures: Annotated[
        bool, typer.Option(help="Also draw the figures (PNG + SVG) into OUT/figures.")
    ] = True,
) -> None:
    """Write alignment, comparisons, transfer, inflation, effort, fingerprints, item_effects and
    exclusions CSVs (see README, "Behavioural analysis")."""
    from experiments.behaviour import analyse, load_pairs, write_behaviour_outputs
    from experiments.behaviour.inputs import read_traces_file
    from experiments.data import load_items_file

    if n_boot < 0:
        raise InputError(f"--n-boot {n_boot}: give 0 (no intervals) or more resamples")
    triples = load_pairs(pairs) if pairs else None
    results = analyse(
        load_items_file(items),
        read_traces_file(traces),
        triples=triples,
        roles=_parse_roles(roles or []) or None,
        n_boot=n_boot,
        seed=seed,
    )
    written = write_behaviour_outputs(results, out, figures=figures)
    console.print(f"wrote {len(written)} files to {out}")


def register(app: typer.Typer) -> None:
    """Add `behaviour` to the handan CLI."""
    app.command("behaviour")(friendly_errors(behaviour))
