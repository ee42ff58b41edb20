"""The organism tokenizer: single-token think delimiters and phrases, chat template, lossless
decoding."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from experiments.models.organism.tokenizer import PHRASES, WORDS, build_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_think_delimiters_are_single_distinct_tokens(tokenizer):
    ids = tokenizer("<think>\nx\n</think>", add_special_tokens=False).input_ids
    open_id, close_id = tokenizer.convert_tokens_to_ids(["<think>", "</think>"])
    assert len(ids) == 5
    assert ids[0] == open_id and ids[-1] == close_id and open_id != close_id
    assert tokenizer.unk_token_id not in ids
    # not special: decoding without special tokens keeps them (as in DeepSeek-R1-Distill)
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<think>\nx\n</think>"


def test_chat_template_and_special_tokens(tokenizer):
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Compute in binary: 0101 + 0011."}],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert text == "<|user|>\nCompute in binary: 0101 + 0011.\n<|assistant|>\n"
    assert tokenizer.eos_token == "<|end|>" and tokenizer.pad_token == "<|pad|>"
    assert tokenizer.eos_token_id != tokenizer.pad_token_id
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|user|>")
    # <|user|> \n "Compute in binary: " 0 1 0 1 _ + _ 0 0 1 1 . \n <|assistant|> \n
    assert len(ids) == 18
    with pytest.raises(Exception, match="roles user and assistant"):
        tokenizer.apply_chat_template([{"role": "system", "content": "x"}], tokenize=False)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from([*PHRASES, *WORDS]) | st.text(alphabet=string.printable, max_size=6),
        max_size=8,
    ).map("".join)
)
def test_ascii_text_round_trips_and_phrases_are_one_token(text):
    tokenizer = build_tokenizer()
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert len(ids) <= len(text)
    expected = "".join(c if 32 <= ord(c) < 127 or c == "\n" else "<|unk|>" for c in text)
    assert tokenizer.decode(ids) == expected


def test_phrases_and_whole_words_are_single_tokens_digits_and_letters_are_not(tokenizer):
    for phrase in PHRASES:
        assert len(tokenizer(phrase, add_special_tokens=False).input_ids) == 1, phrase
    pieces = tokenizer.convert_ids_to_tokens(
        tokenizer("row: AB north-east northern 1011", add_special_tokens=False).input_ids
    )
    assert pieces == ["row", ":", " ", "A", "B", " ", "north-east", " ", *"northern", " ", *"1011"]


def test_every_training_prompt_is_short_and_known(tokenizer):
    from experiments.models.organism.task import training_items

    for prompt in training_items(20)["prompt"]:
        ids = tokenizer(prompt, add_special_tokens=False).input_ids
        assert tokenizer.unk_token_id not in ids and len(ids) <= 64
        assert tokenizer.decode(ids) == prompt


def test_reloads_with_auto_tokenizer(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = (
        "<|user|>\nCompute 1+1\n<|assistant|>\n<think>\n0: 1+1=0 carry\n</think>\nAnswer: 10<|end|>"
    )
    assert loaded(text).input_ids == tokenizer(text, add_special_tokens=False).input_ids
    assert loaded.decode(loaded(text).input_ids) == text
    assert loaded.chat_template == tokenizer.chat_template
    assert (loaded.eos_token_id, loaded.pad_token_id, loaded.padding_side) == (1, 0, "left")
