"""Everything a run config names, checked before a run writes or computes anything (``handan
run`` calls :func:`check_run`): a setting that would fail in a later stage — an unknown dataset,
model, task, capture position, probe target or steering choice, a missing pairs or imported
file, a device torch cannot parse — is refused at once, in one line naming its key, and the run
folder is left as it was. What the pydantic model checks (types, ranges, unknown keys) is not
repeated."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from experiments.errors import HandanError, InputError
from experiments.pipeline.config import RunConfig

STEER_METHODS = ("diff_means", "probe")  # probes.directions
PROBE_DTYPES = ("float32", "float64")


def _fail(source: str, key: str, problem: str) -> None:
    raise InputError(f"{source}: {key}: {problem}")


def _under(source: str, key: str, call):
    """``call()``, its handan error re-raised under ``key``."""
    try:
        return call()
    except HandanError as err:
        _fail(source, key, str(err))


def _check_sites(source: str, key: str, sites: str) -> None:
    """Site names by their form (``KIND.L``, ``KIND.*``, ``HEADKIND.L.H``, ...); whether layer L
    exists is known when the model loads."""
    from hooks.sites import HEAD_KINDS, SITE_KINDS

    form = re.compile(
        rf"({'|'.join(SITE_KINDS)})\.(\*|\d+)|({'|'.join(HEAD_KINDS)})\.(\*|\d+\.(\*|\d+))"
    )
    parts = [p.strip() for p in sites.split(",") if p.strip()]
    bad = [p for p in parts if not form.fullmatch(p)] if parts else [sites]
    if bad:
        _fail(
            source,
            key,
            f"{bad[0]!r} is not a site; use {', '.join(SITE_KINDS)} with .L (a layer) or .*, or "
            f"{', '.join(HEAD_KINDS)}.L.H, comma-separated",
        )


def _check_names(cfg: RunConfig, source: str, items: pd.DataFrame) -> None:
    from hooks.capture import parse_positions
    from hooks.steer_positions import STEER_POSITIONS
    from hooks.store_format import normalise_dtype
    from probes.targets import BASE_TARGETS

    _check_sites(source, "record.sites", cfg.record.sites)
    if cfg.steering.enabled and cfg.steering.site is not None:
        _check_sites(source, "steering.site", cfg.steering.site)
    _under(source, "record.positions", lambda: parse_positions(cfg.record.positions))
    _under(source, "record.dtype", lambda: normalise_dtype(cfg.record.dtype))
    if cfg.probes.dtype not in PROBE_DTYPES:
        _fail(source, "probes.dtype", f"{cfg.probes.dtype!r}; use one of {PROBE_DTYPES}")
    recorded = set(cfg.record.positions)
    for position in cfg.probes.positions or []:
        if position not in recorded:
            _fail(source, "probes.positions", f"{position!r} is not recorded ({sorted(recorded)})")
    features = [c for c in items.columns if c.startswith("feat_")]
    targets = [("probes.targets", t) for t in cfg.probes.targets]
    if cfg.steering.enabled:
        targets += [("steering.target", cfg.steering.target)]
        targets += [("steering.control_target", cfg.steering.control_target)]
        if cfg.steering.position not in recorded:
            _fail(
                source,
                "steering.position",
                f"{cfg.steering.position!r} is not among record.positions {sorted(recorded)}",
            )
        if cfg.steering.inject not in STEER_POSITIONS:
            _fail(
                source, "steering.inject", f"{cfg.steering.inject!r}; use one of {STEER_POSITIONS}"
            )
        if cfg.steering.method not in STEER_METHODS:
            _fail(source, "steering.method", f"{cfg.steering.method!r}; use one of {STEER_METHODS}")
    for key, target in targets:
        for part in target.split("|", 1):
            if part not in BASE_TARGETS and part not in features:
                _fail(
                    source,
                    key,
                    f"unknown target {part!r}; use one of {BASE_TARGETS}, a feat_* column of the "
                    f"items ({features}) or 'a|b'",
                )


def _check_models(cfg: RunConfig, source: str) -> None:
    from experiments.behaviour import load_pairs
    from experiments.models.specs import get_spec

    names = {_under(source, "models", lambda m=m: get_spec(m).name) for m in cfg.models}
    for key, named in [
        ("model_sources", cfg.model_sources),
        ("imported", cfg.imported),
        ("steering.models", cfg.steering.models or []),
    ]:
        unknown = sorted(set(named) - names)
        if unknown:
            raise InputError(
                f"{source}: {key} names {unknown}, which are not among the run's models "
                f"{sorted(names)}"
            )
    for model, path in cfg.imported.items():
        if not Path(path).is_file():
            _fail(source, f"imported.{model}", f"{path} does not exist (`handan traces import`)")
    if cfg.pairs:
        triples = _under(source, "pairs", lambda: load_pairs(cfg.pairs))
        unknown = sorted({m for t in triples for m in t.values()} - names)
        if unknown:
            _fail(source, "pairs", f"names {unknown}, which are not among models {sorted(names)}")


def _items(cfg: RunConfig, source: str) -> pd.DataFrame:
    from experiments.data import items_from

    frames = [
        _under(source, "datasets", lambda e=e: items_from(e, cfg.data_dir)) for e in cfg.datasets
    ]
    items = pd.concat(frames, ignore_index=True)
    unknown = sorted(set(cfg.tasks or []) - set(items["task"]))
    if unknown:
        _fail(
            source,
            "tasks",
            f"{unknown} are not in the datasets; they have {sorted(set(items['task']))}",
        )
    return items


def check_run(cfg: RunConfig, *, source: str = "run config") -> None:
    """Refuse ``cfg`` (one line naming the key) where a stage would fail on it later."""
    if not str(cfg.out).strip():
        _fail(source, "out", "empty; give the run folder")
    if cfg.device is not None:
        import torch

        try:
            torch.device(cfg.device)
        except (RuntimeError, ValueError) as err:
            _fail(
                source, "device", f"{cfg.device!r} is not a torch device ({err}); e.g. cpu, cuda:0"
            )
    _check_models(cfg, source)
    _check_names(cfg, source, _items(cfg, source))
