"""The steering experiment: generate while adding ``alpha * scale * direction`` at one site.

Definitions
- ``direction``: a unit vector ``[d_model]`` in the residual stream of ``site`` (e.g. the teacher's
  length direction from ``probes.directions.fit_direction``; controls: random Gaussian directions
  and the direction of another target).
- ``scale``: the mean L2 norm of the residual stream at ``site`` over the positions the vector is
  added at (``experiments.steering.norms.injected_norm``), so ``alpha`` is in units of that norm:
  ``alpha = 1`` adds a vector as long as a typical activation it is added to.
- one *condition* = (direction, alpha); ``alpha = 0`` is one unsteered run shared by every
  direction. Every condition is generated with the same ``GenerationConfig``; a sample's seed
  depends on (item, sample) only, so the sampling noise is the same across conditions (common
  random numbers: the dose-response is paired item by item and sample by sample).

All conditions are generated together, as rows of shared batches, each row with its own vector
(``experiments.steering.conditions``: files, resumption); ``runs/{direction}/alpha={a}.parquet``
is a traces table per condition, as a separate run of that condition would write it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.errors import InputError
from experiments.generation import GenerationConfig
from experiments.models.specs import ModelSpec
from experiments.steering.conditions import UNSTEERED, make_condition, run_conditions
from hooks.steer_positions import DEFAULT_STEER_POSITIONS

STEERING_COLUMNS = [
    "model",
    "direction",
    "alpha",
    "item_id",
    "task",
    "sample",
    "reasoning_tokens",
    "finished_thinking",
    "correct",
]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def direction_name(name: str) -> str:
    """A direction's name made safe for file names and the steering tables (``a|b`` → ``a_b``)."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("_.") or "direction"


def random_directions(d: int, n: int, seed: int = 0) -> np.ndarray:
    """``n`` unit-norm Gaussian directions ``[n, d]`` (isotropic: uniform on the sphere)."""
    if d < 1 or n < 0:
        raise InputError(f"random_directions needs d >= 1 and n >= 0, got d={d}, n={n}")
    g = np.random.default_rng(seed).standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def _unit(name: str, vector: np.ndarray, width: int) -> np.ndarray:
    if not _NAME.match(name) or name == UNSTEERED:
        raise InputError(
            f"direction name {name!r} must be a file-name-safe word (letters, digits, _ . + -), "
            f"not {UNSTEERED!r}"
        )
    vector = np.asarray(vector, dtype=np.float64)
    if vector.shape != (width,):
        raise InputError(
            f"direction {name!r} has shape {vector.shape} but the site has width {width}; "
            f"fit it on this model's activations at this site"
        )
    norm = np.linalg.norm(vector)
    if not np.isfinite(norm) or norm == 0:
        raise InputError(f"direction {name!r} is zero or not finite; pass a unit vector")
    return vector / norm


def _alphas_of(alphas, names: Sequence[str]) -> dict[str, list[float]]:
    """Per direction, its sorted non-zero alphas (``alphas``: one list for all, or per name)."""
    per = alphas if isinstance(alphas, Mapping) else {n: alphas for n in names}
    missing = sorted(set(names) - set(per))
    if missing:
        raise InputError(f"no alphas given for direction(s) {missing}")
    return {n: sorted({float(a) for a in per[n]} - {0.0}) for n in names}


def run_steering(
    model,
    tokenizer,
    spec: ModelSpec,
    items: pd.DataFrame,
    *,
    directions: Mapping[str, np.ndarray],
    site: str,
    positions: str = DEFAULT_STEER_POSITIONS,
    alphas: Sequence[float] | Mapping[str, Sequence[float]],
    scale: float,
    config: GenerationConfig,
    out: str | Path,
    checker: Callable | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Generate every (direction, alpha) condition on ``items``; return the steering table.

    The added vector is ``alpha * scale * direction`` (direction re-normalised to unit length) at
    ``site`` and ``positions`` (see ``hooks.interventions``). ``alphas``: one list for every
    direction, or a mapping direction name → its own list (e.g. random controls at fewer alphas).
    Columns: ``STEERING_COLUMNS``; the ``alpha = 0`` rows (one unsteered generation) are repeated
    under every direction name so each direction's dose-response has its own zero point.
    """
    from experiments.generation import tracefile
    from hooks.interventions import STEER_POSITIONS
    from hooks.sites import d_model, resolve_site

    if not directions:
        raise InputError("no directions given; pass at least one named unit vector")
    if positions not in STEER_POSITIONS:
        raise InputError(f"unknown steering positions {positions!r}; use one of {STEER_POSITIONS}")
    resolve_site(model, site)
    if not np.isfinite(scale) or scale <= 0:
        raise InputError(f"scale={scale}; pass the (positive) mean residual norm at {site}")
    width = d_model(model)
    units = {name: _unit(name, v, width) for name, v in directions.items()}
    per = _alphas_of(alphas, list(units))
    out = Path(out)
    steering = dict(site=site, positions=positions, scale=float(scale))
    generation = config.identity() | dict(  # what a traces file's metadata compares
        chat_template=spec.chat_template,
        system_prompt=spec.system_prompt,
        template_kwargs=spec.template_kwargs,
        source=spec.source,
        revision=spec.revision,
    )
    base = make_condition(spec.name, generation, UNSTEERED, 0.0, None, steering)
    conditions = [base] + [
        make_condition(spec.name, generation, name, a, units[name], steering)
        for name in units
        for a in per[name]
    ]
    run_conditions(
        model,
        tokenizer,
        spec,
        items,
        conditions,
        site=site,
        positions=positions,
        config=config,
        out=out,
        checker=checker,
        progress=progress,
    )
    keys = pd.DataFrame(
        [(str(i), s) for i in items["item_id"] for s in range(config.samples)],
        columns=["item_id", "sample"],
    )

    def rows(c) -> pd.DataFrame:
        table = tracefile.read_traces(c.path(out)).astype({"item_id": str})
        return keys.merge(table, on=["item_id", "sample"], how="left", validate="one_to_one")

    zero, steered = rows(base), {(c.folder, c.alpha): c for c in conditions[1:]}
    frames = [
        (zero if a == 0 else rows(steered[(name, a)])).assign(direction=name, alpha=a)
        for name in units
        for a in sorted([0.0, *per[name]])
    ]
    table = pd.concat(frames, ignore_index=True)
    return (
        table[STEERING_COLUMNS]
        .astype({"alpha": "float64", "reasoning_tokens": "int64"})
        .reset_index(drop=True)
    )
