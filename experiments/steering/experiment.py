"""The steering experiment: generate while adding ``alpha * scale * direction`` at one site.

Definitions
- ``direction``: a unit vector ``[d_model]`` in the residual stream of ``site`` (e.g. the teacher's
  length direction from ``probes.directions.fit_direction``; controls: random Gaussian directions
  and the direction of another target).
- ``scale``: the mean L2 norm of the residual stream at ``site`` (at the last prompt token), so
  ``alpha`` is in units of that norm: ``alpha = 1`` adds a vector as long as a typical activation.
- one *condition* = (direction, alpha). Every condition is generated with the same
  ``GenerationConfig`` (same seed, same batches), i.e. with common random numbers: the sampling
  noise is the same across alphas, so the dose-response is paired item by item. ``alpha = 0`` is
  one unsteered run shared by every direction.

Files under ``out``: ``runs/{direction}/alpha={alpha}.parquet`` (a traces table per condition,
resumable by ``generate_traces``) next to ``alpha={alpha}.json`` (the condition: site, positions,
scale, alpha, the vector's sha256), which a rerun must match; ``runs/_unsteered/alpha=0.parquet``
(its condition is only the model: a rerun at another site, positions or scale reuses it).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.errors import InputError, SettingsMismatch
from experiments.generation import GenerationConfig
from experiments.models.specs import ModelSpec
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
UNSTEERED = "_unsteered"
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


def residual_norm(
    store, site: str, position: str = "prompt_end", *, item_ids: Sequence[str] | None = None
) -> float:
    """Mean L2 norm of the vectors an ``ActivationStore`` holds for ``site`` at ``position``
    (of the items ``item_ids`` only, when given: a store may hold items a run no longer uses)."""
    X, index = store.load(site, position)
    if item_ids is not None:
        X = X[index["item_id"].astype(str).isin(set(map(str, item_ids))).to_numpy()]
    if len(X) == 0:
        raise InputError(
            f"the store holds no vectors for {site}|{position}; record them with `handan record`"
        )
    return float(np.linalg.norm(np.asarray(X, dtype=np.float64), axis=1).mean())


def prompt_end_activations(
    model, tokenizer, spec: ModelSpec, prompts: Sequence[str], site: str, *, batch_size: int = 32
) -> np.ndarray:
    """Activations ``[n, d]`` (float32) of ``site`` at the last prompt token of each prompt, from one
    left-padded forward per batch (position ids from the attention mask, as in generation)."""
    import torch

    from hooks.engines.hf_loop import encode_prompts, left_pad
    from hooks.recorder import Recorder

    ids = encode_prompts(
        tokenizer,
        list(prompts),
        chat_template=spec.chat_template,
        system_prompt=spec.system_prompt,
        template_kwargs=spec.template_kwargs,
    )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    out = []
    with torch.inference_mode(), Recorder(model, [site], positions=slice(-1, None)) as rec:
        for i in range(0, len(ids), batch_size):
            x, mask, pos = left_pad(ids[i : i + batch_size], pad, device)
            model(input_ids=x, attention_mask=mask, position_ids=pos)
            out.append(rec.activations[site][:, 0].float().cpu().numpy())
    return np.concatenate(out)


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


def _check_condition(path: Path, condition: dict) -> None:
    """Refuse to resume a condition file written under another value of any key of ``condition``."""
    meta = path.with_suffix(".json")
    if meta.exists():
        old = json.loads(meta.read_text())
        diff = sorted(k for k in condition if old.get(k) != condition[k])
        if diff:
            raise SettingsMismatch(
                f"{path} was generated under another condition (differs in {diff}); "
                "use another --out or delete that file"
            )
    else:
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps(condition, sort_keys=True))


def run_steering(
    model,
    tokenizer,
    spec: ModelSpec,
    items: pd.DataFrame,
    *,
    directions: Mapping[str, np.ndarray],
    site: str,
    positions: str = DEFAULT_STEER_POSITIONS,
    alphas: Sequence[float],
    scale: float,
    config: GenerationConfig,
    out: str | Path,
    checker: Callable | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Generate every (direction, alpha) condition on ``items``; return the steering table.

    The added vector is ``alpha * scale * direction`` (direction re-normalised to unit length) at
    ``site`` and ``positions`` (see ``hooks.interventions``). Columns: ``STEERING_COLUMNS``; the
    ``alpha = 0`` rows (one unsteered generation) are repeated under every direction name so each
    direction's dose-response has its own zero point.
    """
    import torch

    from experiments.generation.traces import generate_traces
    from hooks.interventions import STEER_POSITIONS, Steer
    from hooks.sites import d_model, resolve_site

    if not directions:
        raise InputError("no directions given; pass at least one named unit vector")
    if positions not in STEER_POSITIONS:
        raise InputError(f"unknown steering positions {positions!r}; use one of {STEER_POSITIONS}")
    resolve_site(model, site)
    if not np.isfinite(scale) or scale <= 0:
        raise InputError(f"scale={scale}; pass the (positive) mean residual norm at {site}")
    alphas = sorted({float(a) for a in alphas} | {0.0})
    width = d_model(model)
    units = {name: _unit(name, v, width) for name, v in directions.items()}
    out = Path(out)
    dtype = next(model.parameters()).dtype

    def condition(name: str, alpha: float) -> pd.DataFrame:
        folder, ctx = (UNSTEERED, None) if alpha == 0 else (name, alpha)
        path = out / "runs" / folder / f"alpha={alpha:g}.parquet"
        vec = None if ctx is None else alpha * scale * units[name]
        steered = (
            {}
            if vec is None
            else dict(  # the unsteered run depends on none of these
                site=site,
                positions=positions,
                scale=float(scale),
                sha256=hashlib.sha256(units[name].tobytes()).hexdigest(),
            )
        )
        _check_condition(path, dict(model=spec.name, alpha=alpha, direction=folder, **steered))
        context = (
            None
            if vec is None
            else (
                lambda: Steer(model, site, torch.as_tensor(vec, dtype=dtype), positions=positions)
            )
        )
        return generate_traces(
            model,
            tokenizer,
            spec,
            items,
            config=config,
            out=path,
            checker=checker,
            context=context,
            progress=progress,
        )

    base = condition("", 0.0)
    frames = []
    for name in units:
        for alpha in alphas:
            traces = base if alpha == 0 else condition(name, alpha)
            frames.append(traces.assign(direction=name, alpha=alpha))
    table = pd.concat(frames, ignore_index=True)
    return table[STEERING_COLUMNS].astype({"alpha": "float64", "reasoning_tokens": "int64"})
