"""The organism's character-level tokenizer, saved as a real HF ``PreTrainedTokenizerFast``.

Vocabulary (ids in this order): the special tokens ``<|pad|>`` (0, padding), ``<|end|>`` (1, eos),
``<|unk|>`` (2, any character outside the vocabulary), ``<|user|>`` (3), ``<|assistant|>`` (4);
then ``<think>`` (5) and ``</think>`` (6), each one token but *not* special (as in
DeepSeek-R1-Distill, so ``decode(..., skip_special_tokens=True)`` keeps them and reasoning tokens
are counted on ids); then ``"\\n"`` and every printable ASCII character (space to ``~``), one token
each. Pre-tokenisation splits the text into single characters; the ``Fuse`` decoder joins tokens
back without separators, so ``decode(encode(text)) == text`` for any ASCII text.

Chat template: ``<|user|>\\n{content}\\n`` per user turn, ``<|assistant|>\\n{content}<|end|>``
per assistant turn, and ``<|assistant|>\\n`` as the generation prompt. The model writes
``<think>`` itself (the teacher and the student) or answers directly (the baseline).
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, END, UNK, USER, ASSISTANT = "<|pad|>", "<|end|>", "<|unk|>", "<|user|>", "<|assistant|>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
SPECIAL_TOKENS = (PAD, END, UNK, USER, ASSISTANT)
CHARACTERS = ("\n", *(chr(c) for c in range(32, 127)))

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n' + message['content'] + '<|end|>' }}"
    "{% else %}{{ raise_exception('the organism chat template knows the roles user and "
    "assistant, not ' + message['role']) }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The character-level tokenizer with single-token think delimiters and the chat template.

    Padding is on the left (the convention for batched generation); training code builds its own
    right-padded tensors."""
    vocab = {
        tok: i for i, tok in enumerate((*SPECIAL_TOKENS, THINK_OPEN, THINK_CLOSE, *CHARACTERS))
    }
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        eos_token=END,
        unk_token=UNK,
        additional_special_tokens=[USER, ASSISTANT],
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=512,
    )
    tokenizer.add_tokens([THINK_OPEN, THINK_CLOSE], special_tokens=False)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
