"""The engine interface: token ids in, token ids out, one request per (item, sample).

handan encodes prompts itself (``hooks.engines.hf_loop.encode_prompts``), so every engine sees the
same ids; an engine returns the generated ids and why generation stopped, and accounting runs on
those ids whatever the engine. Each request carries its own seed and budget, so what a request
samples does not depend on which other requests share its batch (up to the kernels' numerics).

Engines: ``hf`` (``hooks.engines.hf.HFEngine``: handan's own loop, the one that can capture
activations and steer while it generates) and ``vllm`` (``hooks.engines.vllm.VLLMEngine``: vLLM's
offline ``LLM``, for long traces and large models).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class Decoding:
    """How every request of a run is decoded (temperature 0 = greedy; ``top_k`` 0 and ``min_p``
    0 are off); ``eos_ids`` is handan's whole stop set (tokenizer, generation config and spec)."""

    temperature: float
    top_p: float
    top_k: int
    min_p: float
    eos_ids: tuple[int, ...]


@dataclass(frozen=True)
class Request:
    """One (item, sample): its prompt ids, its seed and its budget of new tokens."""

    prompt_ids: tuple[int, ...]
    seed: int
    max_new_tokens: int


@dataclass(frozen=True)
class Generation:
    """What one request produced: the generated ids (ending with the EOS id when it stopped
    by itself) and ``finish_reason``: ``stop`` (an EOS id) or ``length`` (the budget)."""

    token_ids: tuple[int, ...]
    finish_reason: FinishReason


def finish_reason(token_ids: Sequence[int], eos_ids: Sequence[int]) -> FinishReason:
    return "stop" if token_ids and token_ids[-1] in set(eos_ids) else "length"


class Engine(ABC):
    """A generation engine. ``captures`` says whether it takes an observer (online capture and
    steering need one: only ``hf`` does); ``version`` goes into the traces metadata."""

    name: ClassVar[str]
    captures: ClassVar[bool] = False

    @property
    @abstractmethod
    def version(self) -> str:
        """The engine's version string (e.g. ``vllm 0.32.0``)."""

    @property
    def generation_config(self):
        """The model's ``transformers.GenerationConfig`` (its EOS ids join handan's stop set),
        or None when it has none."""
        return None

    @abstractmethod
    def generate(
        self, requests: Sequence[Request], decoding: Decoding, observer=None
    ) -> list[Generation]:
        """One ``Generation`` per request, in request order."""

    def close(self) -> None:  # noqa: B027 - optional: most engines hold nothing to free
        """Free what the engine holds (its model, processes); the default holds nothing."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
