"""Files in and out of a steering run: direction files → named unit vectors (+ site, fitted items);
steering table → ``steering.csv``, ``steering_summary.csv``, ``dose_response.csv``,
``human_alignment.csv`` (when items carry human RTs) and the dose-response figure; in a run also
the choices made on the fit items, ``site_choice.csv`` and ``linear_range.csv``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.errors import InputError
from experiments.steering.alignment import human_alignment
from experiments.steering.analysis import dose_response, summarise_steering
from experiments.steering.figures import plot_dose_response

STEERING_CSV = "steering.csv"
SUMMARY_CSV = "steering_summary.csv"
DOSE_CSV = "dose_response.csv"
ALIGNMENT_CSV = "human_alignment.csv"
SITE_CSV = "site_choice.csv"
LINEAR_CSV = "linear_range.csv"


def load_directions(
    paths: Sequence[str | Path], *, model: str, site: str | None = None
) -> tuple[dict[str, np.ndarray], str, set[str]]:
    """Read direction files (``probes.directions.save_direction``).

    Returns (name → vector, site, item ids the directions were fitted on). The name is the
    metadata ``target`` (file stem if absent or taken); ``site`` defaults to the metadata's and
    every file must agree with it; a file whose metadata names another model is refused. Fitted
    item ids come from the metadata key ``item_ids`` (absent: none known)."""
    from experiments.steering.experiment import direction_name
    from probes.directions import load_direction

    if not paths:
        raise InputError(
            "no --direction given; pass a direction file written by probes.directions.save_direction"
        )
    vectors: dict[str, np.ndarray] = {}
    fitted: set[str] = set()
    for path in map(Path, paths):
        vector, meta = load_direction(path)
        if meta.get("model") not in (None, model):
            raise InputError(
                f"{path} was fitted on model {meta['model']!r}, not {model!r}; "
                "steer each model along its own direction"
            )
        own_site = meta.get("site")
        if site is None:
            site = own_site
        elif own_site is not None and own_site != site:
            raise InputError(
                f"{path} was fitted at site {own_site!r} but the run steers at {site!r}; "
                "pass directions of one site (or omit --site to use theirs)"
            )
        name = direction_name(str(meta.get("target") or path.stem))
        if name in vectors or name.startswith("random"):
            name = direction_name(path.stem)
        if name.startswith("random"):
            raise InputError(
                f"{path}: direction names starting 'random' are reserved for the random "
                "controls; rename the file"
            )
        if name in vectors:
            raise InputError(
                f"two directions are both named {name!r}; give the files distinct names"
            )
        vectors[name] = vector
        fitted |= {str(i) for i in meta.get("item_ids") or []}
    if site is None:
        raise InputError("the direction files name no site; pass --site (e.g. resid_post.2)")
    return vectors, site, fitted


def write_steering_outputs(
    steering: pd.DataFrame, out: str | Path, *, items: pd.DataFrame | None = None
) -> dict[str, Path]:
    """Write every table and the figure of a steering run into ``out``; returns name → path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "steering": out / STEERING_CSV,
        "summary": out / SUMMARY_CSV,
        "dose_response": out / DOSE_CSV,
    }
    steering.to_csv(paths["steering"], index=False)
    summarise_steering(steering).to_csv(paths["summary"], index=False)
    dose = dose_response(steering)
    dose.to_csv(paths["dose_response"], index=False)
    if items is not None and "human_rt_s" in items and items["human_rt_s"].notna().any():
        paths["human_alignment"] = out / ALIGNMENT_CSV
        human_alignment(steering, items).to_csv(paths["human_alignment"], index=False)
    png, svg = plot_dose_response(dose, out)
    paths.update(figure_png=png, figure_svg=svg)
    return paths


def write_choices(studies: Sequence, out: str | Path) -> None:
    """``site_choice.csv`` and ``linear_range.csv`` of every model's ``study.Study``."""
    out = Path(out)
    pd.concat([s.sites for s in studies], ignore_index=True).to_csv(out / SITE_CSV, index=False)
    pd.concat([s.linear for s in studies], ignore_index=True).to_csv(out / LINEAR_CSV, index=False)
