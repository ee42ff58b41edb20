"""Generation settings: defined once here, resolved against a model spec in one place.

``GenerationSettings`` is what a user sets (CLI options, a run config's ``generation:``); a field
left ``None`` takes the spec's recommended value. ``GenerationSettings.resolve(spec)`` (or
``GenerationConfig.from_spec(spec, **overrides)``, the same path) gives the frozen
``GenerationConfig`` that generation runs with and that traces metadata and store manifests record.

``GenerationConfig.identity()`` is the part that changes what is generated (and so must agree
before a run resumes a file): not ``batch_size``, ``tensor_parallel_size``,
``gpu_memory_utilization`` or ``distributed_executor_backend``, which change only how fast (every
request has its own seed and budget) — they are recorded, not compared.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from experiments.models.specs import ModelSpec, Sampling

Engine = Literal["hf", "vllm"]
#: settings that change speed, not results: recorded in metadata, not compared on resume
SPEED_SETTINGS = (
    "batch_size",
    "tensor_parallel_size",
    "gpu_memory_utilization",
    "distributed_executor_backend",
)


class GenerationSettings(BaseModel):
    """User-facing generation settings; ``None`` means the model spec's default."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # inf: no temperature
    samples: int = Field(1, ge=1)
    max_new_tokens: int | None = Field(None, gt=0)
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    min_p: float | None = Field(None, ge=0, lt=1)
    seed: int = 0
    batch_size: int = Field(16, ge=1)  # hf: rows per forward; vllm: requests per written part
    engine: Engine = "hf"
    max_model_len: int | None = Field(
        None, gt=0
    )  # None: the spec's (prompt + budget are cut there)
    tensor_parallel_size: int = Field(1, ge=1)  # vllm: GPUs one model is sharded over
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)  # vllm: share of each GPU it may use
    distributed_executor_backend: Literal["mp", "ray"] | None = None  # vllm: "ray" for many nodes

    def resolve(self, spec: ModelSpec, **overrides) -> GenerationConfig:
        return GenerationConfig.from_spec(spec, **{**self.model_dump(), **overrides})


_USER, _SPEC = GenerationSettings(), Sampling()


@dataclass(frozen=True)
class GenerationConfig:
    """Resolved settings of one generation run (defaults are those above, not new ones)."""

    samples: int = _USER.samples
    max_new_tokens: int = _SPEC.max_new_tokens
    temperature: float = _SPEC.temperature
    top_p: float = _SPEC.top_p
    top_k: int = _SPEC.top_k
    min_p: float = _SPEC.min_p
    seed: int = _USER.seed
    batch_size: int = _USER.batch_size
    engine: Engine = _USER.engine
    max_model_len: int | None = _USER.max_model_len
    tensor_parallel_size: int = _USER.tensor_parallel_size
    gpu_memory_utilization: float = _USER.gpu_memory_utilization
    distributed_executor_backend: str | None = _USER.distributed_executor_backend

    @classmethod
    def from_spec(cls, spec: ModelSpec, **overrides) -> GenerationConfig:
        """The spec's sampling defaults with ``overrides`` (``None`` = keep the spec's), validated."""
        set_ = {k: v for k, v in overrides.items() if v is not None}
        user = GenerationSettings.model_validate({**_USER.model_dump(), **set_})
        s = spec.sampling
        return cls(
            samples=user.samples,
            seed=user.seed,
            batch_size=user.batch_size,
            max_new_tokens=user.max_new_tokens or s.max_new_tokens,
            temperature=s.temperature if user.temperature is None else user.temperature,
            top_p=user.top_p or s.top_p,
            top_k=s.top_k if user.top_k is None else user.top_k,
            min_p=s.min_p if user.min_p is None else user.min_p,
            engine=user.engine,
            max_model_len=user.max_model_len or spec.max_model_len,
            tensor_parallel_size=user.tensor_parallel_size,
            gpu_memory_utilization=user.gpu_memory_utilization,
            distributed_executor_backend=user.distributed_executor_backend,
        )

    def identity(self) -> dict:
        """The settings that change what is generated (compared before a file is resumed)."""
        return {k: v for k, v in asdict(self).items() if k not in SPEED_SETTINGS}

    def speed(self) -> dict:
        """The settings that change only how fast (recorded beside the identity)."""
        return {k: v for k, v in asdict(self).items() if k in SPEED_SETTINGS}
