"""Offline stand-ins for the real models' tokenizers: one token per character, and the real special
tokens *at their real ids* (R1-Distill-Qwen, Llama-3, Qwen3, a Qwen2.5 base), with chat templates
that render the generation prompt as the real ones do. Plus tiny random-init models whose
vocabulary reaches those ids, and ``script``: a forward hook that makes a model emit given ids.

Ids (from each model's tokenizer_config / generation_config):
- R1-Distill-Qwen: <｜end▁of▁sentence｜> 151643 (eos = pad), <｜User｜> 151644, <｜Assistant｜>
  151645, <｜begin▁of▁sentence｜> 151646, <think> 151648, </think> 151649 (added, not special);
  the template ends the prompt in ``<think>\\n`` (since the 2025 update; ``old_template`` before).
- Llama-3: <|begin_of_text|> 128000, <|end_of_text|> 128001, <|start_header_id|> 128006,
  <|end_header_id|> 128007, <|eom_id|> 128008, <|eot_id|> 128009; EOS set {128001, 128008, 128009}.
- Qwen3 / Qwen2.5: <|endoftext|> 151643, <|im_start|> 151644, <|im_end|> 151645; Qwen3's <think>
  151667, </think> 151668; ``enable_thinking=False`` writes an empty think span into the prompt.
"""

from __future__ import annotations

import string

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

CHARS = sorted(set(string.printable) - set("\x0b\x0c\r"))

R1_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}"
    "{% elif m['role'] == 'user' %}<｜User｜>{{ m['content'] }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<｜Assistant｜>{% if not old %}<think>\n{% endif %}{% endif %}"
)
LLAMA3_TEMPLATE = (
    "<|begin_of_text|>{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>"
    "\n\n{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
CHATML = (
    "{% for m in messages %}{% if loop.first and m['role'] != 'system' and default_system %}"
    "<|im_start|>system\n{{ default_system }}<|im_end|>\n{% endif %}"
    "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)


def _tokenizer(specials: dict[str, int], added: dict[str, int], template, **roles):
    vocab = {c: i for i, c in enumerate(CHARS)} | specials | added
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="?"))
    backend.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    backend.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, **roles)
    tok.add_special_tokens({"additional_special_tokens": list(specials)})
    tok.add_tokens(list(added))  # not special: decode(skip_special_tokens=True) keeps them
    tok.chat_template = template
    assert all(tok.convert_tokens_to_ids(t) == i for t, i in (specials | added).items())
    return tok


def r1_distill_qwen(old_template: bool = False) -> PreTrainedTokenizerFast:
    template = R1_TEMPLATE.replace("not old", "false" if old_template else "true")
    return _tokenizer(
        {
            "<｜end▁of▁sentence｜>": 151643,
            "<｜User｜>": 151644,
            "<｜Assistant｜>": 151645,
            "<｜begin▁of▁sentence｜>": 151646,
        },
        {"<think>": 151648, "</think>": 151649},
        template,
        bos_token="<｜begin▁of▁sentence｜>",
        eos_token="<｜end▁of▁sentence｜>",
        pad_token="<｜end▁of▁sentence｜>",
    )


def llama3(base: bool = False) -> PreTrainedTokenizerFast:
    """Llama-3.x: the instruct tokenizer (eos <|eot_id|>, a template) or Meta's base one (eos
    <|end_of_text|>, no template)."""
    return _tokenizer(
        {
            "<|begin_of_text|>": 128000,
            "<|end_of_text|>": 128001,
            "<|start_header_id|>": 128006,
            "<|end_header_id|>": 128007,
            "<|eom_id|>": 128008,
            "<|eot_id|>": 128009,
        },
        {},
        None if base else LLAMA3_TEMPLATE,
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>" if base else "<|eot_id|>",
    )


def qwen_chatml(default_system: str = "", think: bool = False) -> PreTrainedTokenizerFast:
    """Qwen3 (``think``: <think> 151667 / </think> 151668, eos <|im_end|>) or a Qwen2.5 base
    (eos <|endoftext|>, its template's ``default_system`` prompt)."""
    template = CHATML.replace("default_system", repr(default_system) if default_system else "''")
    return _tokenizer(
        {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645},
        {"<think>": 151667, "</think>": 151668} if think else {},
        template,
        eos_token="<|im_end|>" if think else "<|endoftext|>",
        pad_token="<|endoftext|>",
    )


def tiny_lm(tokenizer, eos_ids: list[int] | int, seed: int = 0) -> Qwen2ForCausalLM:
    """A random-init Qwen2 (2 layers, hidden 32) whose vocabulary covers ``tokenizer``'s highest
    id; its generation config lists ``eos_ids`` (as the real model's generation_config.json)."""
    torch.manual_seed(seed)
    vocab = max(tokenizer.get_vocab().values()) + 1
    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    model = Qwen2ForCausalLM(config).eval()
    model.generation_config = GenerationConfig(eos_token_id=eos_ids)
    return model


def char_ids(tokenizer, text: str) -> list[int]:
    """The ids of ``text`` one character at a time (never an added token's id)."""
    return [tokenizer.convert_tokens_to_ids(c) for c in text]


def script(model, scripts: list[list[int]], filler: int):
    """Make ``model`` emit, for batch row r, ``scripts[r]`` token by token, then ``filler``
    forever (greedy decoding). The row's generated index comes from the position ids, so left
    padding and the KV cache do not matter. Returns the hook's handle."""
    state = {}

    def hook(_module, _args, kwargs, output):
        pos = kwargs["position_ids"][:, -1]
        if kwargs["input_ids"].shape[1] > 1:  # the prefill: the prompt lengths
            state["plen"] = kwargs["attention_mask"].sum(-1)
        index = (pos + 1 - state["plen"]).tolist()
        logits = torch.full_like(output.logits[:, -1:], -1e4)
        for r, j in enumerate(index):
            want = scripts[r][j] if 0 <= j < len(scripts[r]) else filler
            logits[r, 0, want] = 0.0
        output.logits = logits
        return output

    return model.register_forward_hook(hook, with_kwargs=True)
