"""The organism's model shapes: small ``LlamaForCausalLM`` checkpoints, tied embeddings
(trained in fp32, shipped as fp16).

- teacher: hidden 128, 4 layers, 4 heads (head dim 32), MLP 384 — about 0.8M parameters;
- baseline (and the student, which starts from the baseline's weights): hidden 96, 3 layers,
  4 heads (head dim 24), MLP 288 — about 0.35M parameters.

RoPE positions, RMSNorm, SiLU-gated MLP: the architecture of Llama / R1-Distill-Llama, so the same
loading, hooks and probes serve both. ``max_position_embeddings`` = 256 covers the longest prompt
(about 70 tokens with the chat template) plus the registry's 160-token generation budget.
"""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from experiments.errors import InputError

SHAPES: dict[str, dict[str, int]] = {
    "teacher": {
        "hidden_size": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 384,
    },
    "baseline": {
        "hidden_size": 96,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "intermediate_size": 288,
    },
}
MAX_POSITIONS = 256


def build_model(shape: str, tokenizer: PreTrainedTokenizerBase, seed: int) -> LlamaForCausalLM:
    """A freshly initialised model of a named shape (``teacher`` or ``baseline``), seeded."""
    if shape not in SHAPES:
        raise InputError(f"unknown organism shape {shape!r}; use one of {sorted(SHAPES)}")
    dims = SHAPES[shape]
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        num_key_value_heads=dims["num_attention_heads"],
        max_position_embeddings=MAX_POSITIONS,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|user|>"),
        torch_dtype="float32",
        **dims,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model
