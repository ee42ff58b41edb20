"""Run configs: one pydantic model per section, every default of a run here.

``RunConfig.from_yaml`` reads a YAML file with ``yaml.safe_load`` (nothing in it executes) and
names the key of any invalid value. Generation settings are ``experiments.generation``'s own
``GenerationSettings`` (the CLI uses the same model), so their defaults exist once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, field_validator

from experiments.errors import InputError
from experiments.generation.config import GenerationSettings
from hooks.steer_positions import DEFAULT_STEER_POSITIONS


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordCfg(_Cfg):
    sites: str = "resid_post.*"
    positions: list[str] = ["prompt_end"]
    dtype: str = "float32"

    @field_validator("sites")
    @classmethod
    def _site_forms(cls, value: str) -> str:
        from hooks.sites import split_sites  # torch: only when a config is validated

        split_sites(value)
        return value

    @field_validator("positions")
    @classmethod
    def _position_labels(cls, value: list[str]) -> list[str]:
        from hooks.capture import parse_positions

        parse_positions(value)
        return value


class HeadCfg(_Cfg):
    """``experiments.pipeline.head_stage``: attention heads probed (recorded teacher-forced at
    ``positions`` only, for ``models`` only)."""

    enabled: bool = True
    models: list[str] | None = None  # None: the first triple's teacher and student
    targets: list[str] = ["reasoning_tokens"]  # the length code (add human_rt: ~2x the time)
    positions: list[str] = ["prompt_end"]


class ProbeCfg(_Cfg):
    targets: list[str] = ["human_rt", "reasoning_tokens", "reasoning_tokens|human_rt"]
    positions: list[str] | None = None  # None: every recorded position
    cv: int = Field(5, ge=2)
    n_permutations: int = Field(100, ge=0)
    n_boot: int = Field(1000, ge=0)
    # random halvings of the selection-adjusted scores (probes.crossfit.N_SPLITS)
    n_splits: int = Field(10, ge=2)
    # relative depths compared without selection, fixed before any data
    # (probes.contrasts.PREREGISTERED_DEPTHS; [] for none)
    depths: list[float] = [0.25, 0.5, 0.75]
    dtype: str = "float64"  # "float32": about 2x faster on CPU, scores within ~1e-4
    heads: HeadCfg = HeadCfg()

    @field_validator("depths")
    @classmethod
    def _depths_in_range(cls, value: list[float]) -> list[float]:
        if any(not 0 <= d <= 1 for d in value):
            raise ValueError(f"relative depths must lie in [0, 1] (0 = first layer), got {value}")
        return value


class HeadAblationCfg(_Cfg):
    """``experiments.steering.ablation``: the ``k`` heads that best predict the steering target
    on the fit items (from the model's head store, ``probes.heads``), ablated at ``doses``
    against ``n_random`` random sets of ``k`` other heads."""

    enabled: bool = True
    k: int = Field(2, ge=1)
    doses: list[float] = [0.5, 1.0]
    n_random: int = Field(8, ge=1)
    mode: Literal["zero", "mean"] = "zero"


class SteerCfg(_Cfg):
    """``experiments.steering.study``: every choice below is applied on the direction-fitting
    items (the ones not held out) before a held-out item is steered."""

    enabled: bool = True
    models: list[str] | None = None  # None: every model with a think span
    target: str = "reasoning_tokens"
    control_target: str = "human_rt"  # "the direction of a different target"
    position: str = "prompt_end"  # where the direction is read from the store
    inject: str = (
        DEFAULT_STEER_POSITIONS  # where it is added: prompt | prompt_end | generated | all
    )
    site: str | None = None  # None: the best site for `target` by a sweep on the fit items
    method: str = "diff_means"
    alphas: list[FiniteFloat] = Field(  # the whole curve
        [-1.0, -0.5, -0.25, -0.1, 0.0, 0.1, 0.25, 0.5, 1.0], min_length=1
    )
    n_random: int = Field(20, ge=0)  # random directions of equal norm: the null of the slope
    # the linear range: the largest |alpha| of the grid at which `n_calibration` other random
    # directions change mean log(1 + reasoning tokens) on the fit items by less than this (RMS)
    linear_tolerance: float = Field(0.1, gt=0)
    n_calibration: int = Field(4, ge=1)
    calibration_items: int | None = Field(None, ge=2)  # fit items the rule runs on; None: all
    max_items: int | None = Field(None, ge=2)  # held-out items steered, at most; None: all
    holdout: float = Field(0.5, gt=0, lt=1)  # share of items held out from direction fitting
    samples: int = Field(2, ge=1)
    heads: HeadAblationCfg = HeadAblationCfg()  # models with a head store only


class BehaviourCfg(_Cfg):
    n_boot: int = Field(2000, ge=0)


class RunConfig(_Cfg):
    name: str = "run"
    out: str = "runs/run"
    data_dir: str | None = None  # None: HANDAN_DATA_DIR, else download
    datasets: list[str] = Field(min_length=1)  # dataset names (`handan data list`) or Items files
    tasks: list[str] | None = None
    max_items_per_task: int | None = Field(None, ge=1)  # None: every item
    models: list[str] = Field(min_length=1)  # registry names or spec .yaml files
    model_sources: dict[str, str] = {}  # override a model's `source` (e.g. retrained organism)
    # model → traces file made by `handan traces import` (e.g. DeepSeek-R1's): used as that model's
    # traces, not generated; such a model has no activation store (no probes, no steering)
    imported: dict[str, str] = {}
    pairs: str | None = None  # PAIRS.yaml; None: from the specs' roles/registry pairings
    device: str | None = None
    generation: GenerationSettings = GenerationSettings()
    record: RecordCfg = RecordCfg()
    behaviour: BehaviourCfg = BehaviourCfg()
    probes: ProbeCfg = ProbeCfg()
    steering: SteerCfg = SteerCfg()

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> RunConfig:
        """The config in YAML file ``path`` with top-level ``overrides``; errors name the file."""
        return cls.from_mapping(read_yaml_mapping(path), source=str(path), **overrides)

    @classmethod
    def from_mapping(cls, raw: dict, *, source: str = "run config", **overrides: Any) -> RunConfig:
        from pydantic import ValidationError

        try:
            return cls.model_validate({**raw, **overrides})
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()
            )
            raise InputError(f"{source}: {problems}") from err


def read_yaml_mapping(path: str | Path) -> dict:
    """A run config file: a YAML mapping of settings (``experiments.data.user_table``'s reader:
    ``yaml.safe_load``, tags that would build Python objects refused, never executed)."""
    from experiments.data.user_table import read_yaml_mapping as read_mapping

    return read_mapping(
        path,
        what=f"run config (examples: {CONFIGS_DIR}/*.yaml)",
        keys="settings (name, datasets, models, generation, ...)",
    )


def deep_merge(base: dict, overlay: dict) -> dict:
    """``base`` with ``overlay`` laid over it key by key at every depth (mappings merge, the rest
    is replaced)."""
    out = dict(base)
    for key, value in overlay.items():
        out[key] = (
            deep_merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


CONFIGS_DIR = Path(__file__).parent / "configs"
DEMO_CONFIG = CONFIGS_DIR / "demo.yaml"
#: ``handan demo --fast``: the same pipeline with fewer samples, permutations and bootstrap draws,
#: laid over the demo config with :func:`deep_merge` (a smoke run)
FAST = {
    "generation": {"samples": 2, "batch_size": 128, "seed": 0},
    "behaviour": {"n_boot": 300},
    "probes": {
        "targets": ["human_rt", "reasoning_tokens", "reasoning_tokens|human_rt"],
        "n_permutations": 20,
        "n_boot": 200,
    },
    "steering": {
        "alphas": [-1.0, 0.0, 1.0],
        "n_random": 2,
        "samples": 1,
        "heads": {"n_random": 2},
    },
}
