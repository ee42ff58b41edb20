"""Generation settings: defined once here, resolved against a model spec in one place.

``GenerationSettings`` is what a user sets (CLI options, a run config's ``generation:``); a field
left ``None`` takes the spec's recommended value. ``GenerationSettings.resolve(spec)`` (or
``GenerationConfig.from_spec(spec, **overrides)``, the same path) gives the frozen
``GenerationConfig`` that generation runs with and that traces metadata and store manifests record.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from experiments.models.specs import ModelSpec, Sampling


class GenerationSettings(BaseModel):
    """User-facing generation settings; ``None`` means the model spec's default."""

    model_config = ConfigDict(extra="forbid")
    samples: int = Field(1, ge=1)
    max_new_tokens: int | None = Field(None, gt=0)
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    min_p: float | None = Field(None, ge=0, lt=1)
    seed: int = 0
    batch_size: int = Field(16, ge=1)

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
        )
