"""`handan steer`: the causal test — add a direction to the residual stream and measure how long
the model thinks (dose-response over alpha, controls: random directions of equal norm, steered at
``±alpha_max``, the linear range found on the items the directions were fitted on)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from experiments.cli.common import (
    GENERATION_DEFAULTS,
    BatchSizeOpt,
    DataDirOpt,
    DeviceOpt,
    DtypeOpt,
    ItemsOpt,
    MaxNewTokensOpt,
    ModelOpt,
    SamplesOpt,
    SeedOpt,
    TemperatureOpt,
    TopPOpt,
    friendly_errors,
)
from experiments.errors import InputError, MissingInput
from hooks.steer_positions import DEFAULT_STEER_POSITIONS


def parse_alphas(text: str) -> list[float]:
    """``"-2,-1,0,1,2"`` → floats (0 is always added)."""
    try:
        alphas = [float(a) for a in text.split(",") if a.strip()]
    except ValueError as err:
        raise InputError(
            f"--alphas {text!r} is not a comma-separated list of numbers, e.g. -2,-1,0,1,2"
        ) from err
    if not any(a != 0 for a in alphas):
        raise InputError(f"--alphas {text!r} has no non-zero strength; e.g. -2,-1,0,1,2")
    return alphas


def read_item_ids(path: Path) -> set[str]:
    """Item ids from a .txt (one per line) or an items-like table with an ``item_id`` column."""
    from experiments.contracts import read_table

    if path.suffix == ".txt":
        if not path.exists():
            raise MissingInput(f"--exclude-items {path} does not exist")
        return {line.strip() for line in path.read_text().splitlines() if line.strip()}
    table = read_table(path)
    if "item_id" not in table:
        raise InputError(
            f"--exclude-items {path} has no item_id column; pass a table with one, or a .txt of ids"
        )
    return set(table["item_id"].astype(str))


def register(app: typer.Typer) -> None:
    """Add ``steer`` to ``app``."""

    @app.command("steer")
    @friendly_errors
    def steer(
        model: ModelOpt,
        direction: Annotated[
            list[Path],
            typer.Option(help="direction file (probes.directions.save_direction); repeatable"),
        ],
        items: ItemsOpt,
        out: Annotated[Path, typer.Option(help="output folder")],
        alphas: Annotated[
            str, typer.Option(help="strengths in units of the mean residual norm, e.g. -2,-1,0,1,2")
        ] = "-2,-1,0,1,2",
        site: Annotated[
            str | None, typer.Option(help="site to steer (default: the directions' metadata)")
        ] = None,
        positions: Annotated[
            str,
            typer.Option(
                help="where the vector is added: prompt (every prompt token), prompt_end, generated or all"
            ),
        ] = DEFAULT_STEER_POSITIONS,
        n_random: Annotated[
            int, typer.Option(min=0, help="random unit directions: the null of the slope")
        ] = 20,
        linear_tolerance: Annotated[
            float,
            typer.Option(
                min=0,
                help="alpha_max: the largest |alpha| at which random directions change mean "
                "log(1 + reasoning tokens) on the fitted items by less than this (RMS)",
            ),
        ] = 0.1,
        calibration_directions: Annotated[
            int, typer.Option(min=1, help="random directions the linear-range rule uses")
        ] = 4,
        scale: Annotated[
            str,
            typer.Option(
                help="'auto' (mean residual norm at the site over the prompt positions the "
                "vector is added at) or a number"
            ),
        ] = "auto",
        exclude_items: Annotated[
            Path | None,
            typer.Option(
                help="item ids to hold out (.txt or table), besides the directions' fitted items"
            ),
        ] = None,
        samples: SamplesOpt = GENERATION_DEFAULTS.samples,
        max_new_tokens: MaxNewTokensOpt = None,
        temperature: TemperatureOpt = None,
        top_p: TopPOpt = None,
        seed: SeedOpt = GENERATION_DEFAULTS.seed,
        batch_size: BatchSizeOpt = GENERATION_DEFAULTS.batch_size,
        device: DeviceOpt = None,
        dtype: DtypeOpt = None,
        data_dir: DataDirOpt = None,
    ) -> None:
        """Steer MODEL along each DIRECTION (and random controls) at several strengths; write
        steering.csv, steering_summary.csv, dose_response.csv, linear_range.csv and
        dose_response.png/svg to OUT."""
        import numpy as np
        import pandas as pd

        from experiments.data import items_from
        from experiments.generation import GenerationSettings
        from experiments.models.loading import load_model
        from experiments.models.specs import get_spec
        from experiments.steering import injected_norm, random_directions, run_steering
        from experiments.steering.calibration import linear_range
        from experiments.steering.outputs import LINEAR_CSV, load_directions, write_steering_outputs
        from hooks.sites import d_model

        spec = get_spec(model)
        cfg = GenerationSettings(
            samples=samples,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            batch_size=batch_size,
        ).resolve(spec)
        alpha_list = parse_alphas(alphas)
        vectors, site, fitted = load_directions(direction, model=spec.name, site=site)
        excluded = read_item_ids(exclude_items) if exclude_items else set()
        table = items_from(items, data_dir)
        kept = table[~table["item_id"].astype(str).isin(fitted | excluded)].reset_index(drop=True)
        if len(kept) == 0:
            raise InputError(
                f"all {len(table)} items were used to fit the directions or excluded; "
                "pass items the directions were not fitted on"
            )
        typer.echo(
            f"steering on {len(kept)} held-out items; held out {len(table) - len(kept)} of {len(table)} "
            f"({len(fitted)} fitted ids in the direction metadata, {len(excluded)} from --exclude-items)"
        )
        if not fitted and not excluded:
            typer.echo(
                "warning: the direction metadata lists no fitted items (key item_ids); pass "
                "--exclude-items with the items the directions were fitted on",
                err=True,
            )
        net, tokenizer = load_model(spec, device=device, dtype=dtype)
        if scale == "auto":
            if positions in ("generated", "all"):
                raise InputError(
                    f"--positions {positions} adds the vector at generated tokens; pass a numeric "
                    "--scale (auto measures prompt positions only; `handan run` measures both)"
                )
            norm = injected_norm(
                net,
                tokenizer,
                spec,
                kept["prompt"].tolist(),
                site,
                positions=positions,
                batch_size=batch_size,
            )
        else:
            try:
                norm = float(scale)
            except ValueError as err:
                raise InputError(f"--scale {scale!r}: pass 'auto' or a positive number") from err
        width = d_model(net)
        common = dict(site=site, positions=positions, scale=norm, config=cfg)
        grid = sorted({*alpha_list, 0.0})
        fit_items = table[table["item_id"].astype(str).isin(fitted)]
        if len(fit_items) >= 2:
            alpha_max, linear = linear_range(
                net,
                tokenizer,
                spec,
                fit_items,
                directions={
                    f"calibration{k}": v
                    for k, v in enumerate(
                        random_directions(width, calibration_directions, seed + 1)
                    )
                },
                alphas=grid,
                tolerance=linear_tolerance,
                out=out / "calibration",
                **common,
            )
            out.mkdir(parents=True, exist_ok=True)
            linear.to_csv(out / LINEAR_CSV, index=False)
            random_alphas = [-alpha_max, alpha_max]
            grid = sorted({*grid, *random_alphas})
            typer.echo(f"linear range on {len(fit_items)} fitted items: alpha_max = {alpha_max:g}")
        else:
            random_alphas = grid
            typer.echo(
                "warning: the fitted items are not in --items, so no linear range was chosen; "
                "random directions are steered at every alpha",
                err=True,
            )
        per = {name: grid for name in vectors}
        for k, vec in enumerate(random_directions(width, n_random, seed)):
            vectors[f"random{k}"], per[f"random{k}"] = vec, random_alphas
        steering = run_steering(
            net, tokenizer, spec, kept, directions=vectors, alphas=per, out=out, **common
        )
        paths = write_steering_outputs(steering, out, items=kept)
        summary = pd.read_csv(paths["summary"])
        typer.echo(f"{spec.name} steered at {site}|{positions}, scale {norm:.3g}; wrote {out}")
        for row in summary.itertuples():
            versus = "" if np.isnan(row.p_random) else f", p_random={row.p_random:.3g}"
            typer.echo(
                f"  {row.direction}: slope {row.slope:+.3f} [{row.slope_lo:+.3f}, {row.slope_hi:+.3f}] "
                f"log-tokens/alpha over |alpha| <= {row.alpha_max:g}, p={row.p:.3g}{versus}, "
                f"accuracy change {row.acc_change:+.3f}/alpha"
            )
