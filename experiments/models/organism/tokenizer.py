"""The organism's tokenizer, saved as a real HF ``PreTrainedTokenizerFast``.

Vocabulary (ids in this order): the special tokens ``<|pad|>`` (0, padding), ``<|end|>`` (1, eos),
``<|unk|>`` (2, any character outside the vocabulary), ``<|user|>`` (3), ``<|assistant|>`` (4);
then ``<think>`` (5) and ``</think>`` (6), each one token but *not* special (as in
DeepSeek-R1-Distill, so ``decode(..., skip_special_tokens=True)`` keeps them and reasoning tokens
are counted on ids); then ``PHRASES`` — the fixed sentences of the five tasks' prompts (one token
each, as a BPE vocabulary merges a corpus's frequent strings) — then ``WORDS`` (the compass
directions, truth values and the scratchpads' words, one token each where they stand as a whole
word); then ``"\\n"`` and every printable ASCII character (space to ``~``), one token each.

Pre-tokenisation cuts the text, left to right, into the longest phrase or word that starts at the
current position, else one character; the ``Fuse`` decoder joins tokens back without separators,
so ``decode(encode(text)) == text`` for any ASCII text. Digits, operators and object letters stay
single characters, so a scratchpad's length in tokens counts its steps. A 4-bit prompt is 13
tokens, a 4-premise relational prompt 35, a cardinal-direction prompt 49-63.

Chat template: ``<|user|>\\n{content}\\n`` per user turn, ``<|assistant|>\\n{content}<|end|>``
per assistant turn, and ``<|assistant|>\\n`` as the generation prompt. The model writes
``<think>`` itself (the teacher and the student) or reasons in plain text (the baseline).
"""

from __future__ import annotations

import re

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, END, UNK, USER, ASSISTANT = "<|pad|>", "<|end|>", "<|unk|>", "<|user|>", "<|assistant|>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
SPECIAL_TOKENS = (PAD, END, UNK, USER, ASSISTANT)
CHARACTERS = ("\n", *(chr(c) for c in range(32, 127)))
PHRASES = (
    "Compute in binary: ",
    ". Reply with the result in binary after 'Answer:'.",
    "Objects are placed in a row from left to right.",
    "Premise ",
    " is to the left of ",
    " is to the right of ",
    "Statement: ",
    "\nIs the statement necessarily true given the premises? Give the final answer (true or false)"
    " after 'Answer:'.",
    "Complete the sentence: ",
    "\nChoose one of: north, north-east, east, south-east, south, south-west, west, north-west. "
    "Give the final answer (one direction) after 'Answer:'.",
    " is _____ of the ",
    " of the ",
    "The ",
    " is ",
    "Answer:",
)
WORDS = (
    "north-east",
    "north-west",
    "south-east",
    "south-west",
    "north",
    "south",
    "east",
    "west",
    "true",
    "false",
    "carry",
    "borrow",
    "row",
    "yes",
    "no",
    "so",
    "sum",
    "flip",
)

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


def _split_pattern() -> str:
    """Longest phrase or whole word first, else any one character."""
    phrases = [re.escape(p) for p in sorted(PHRASES, key=len, reverse=True)]
    words = [rf"\b{re.escape(w)}\b" for w in sorted(WORDS, key=len, reverse=True)]
    return "|".join([*phrases, *words, r"[\s\S]"])


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The phrase-and-character tokenizer with single-token think delimiters and the chat
    template. Padding is on the left (the convention for batched generation); training code
    builds its own right-padded tensors."""
    vocab = {
        tok: i
        for i, tok in enumerate(
            (*SPECIAL_TOKENS, THINK_OPEN, THINK_CLOSE, *PHRASES, *WORDS, *CHARACTERS)
        )
    }
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(_split_pattern()), behavior="isolated")
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
