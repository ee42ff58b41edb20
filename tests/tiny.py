"""Tiny random-init models with a real (character-level) fast tokenizer that has think tokens."""

from __future__ import annotations

import string

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

SPECIALS = ["<pad>", "<eos>", "<think>", "</think>"]
TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% if think %}<think>\n{% endif %}{% endif %}"
)


def char_tokenizer() -> PreTrainedTokenizerFast:
    chars = sorted(set(string.printable) - set("\x0b\x0c\r"))
    vocab = {t: i for i, t in enumerate(SPECIALS + chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="?"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")
    fast.add_special_tokens({"additional_special_tokens": ["<think>", "</think>"]})
    fast.chat_template = TEMPLATE
    return fast


def tiny_model(kind: str = "qwen2", vocab: int = 110, seed: int = 0, layers: int = 2):
    """A random-init decoder (hidden 64, 4 heads, fp32, eval mode): qwen2, llama or gpt2."""
    torch.manual_seed(seed)
    common = dict(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=1,
        pad_token_id=0,
    )
    if kind == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    elif kind == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    elif kind == "gpt2":
        model = GPT2LMHeadModel(
            GPT2Config(
                n_embd=64,
                n_layer=layers,
                n_head=4,
                vocab_size=vocab,
                bos_token_id=1,
                eos_token_id=1,
            )
        )
    else:
        raise ValueError(kind)
    return model.eval()


def hook_ids(model: torch.nn.Module) -> set[tuple[str, int]]:
    """Every forward (pre-)hook id on the model. transformers 5 installs its own persistent
    output-capturing hooks (for output_hidden_states), so tests compare against a snapshot."""
    return {
        (name, hid)
        for name, m in model.named_modules()
        for hid in [*m._forward_hooks, *m._forward_pre_hooks]
    }
