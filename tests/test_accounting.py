"""Reasoning-token accounting on crafted id sequences (ids from tests/tiny.py: <eos>=1, <think>=2, </think>=3)."""

import pytest
from tiny import char_tokenizer

from hooks.accounting import ThinkTokens, account, prompt_opens_think, think_tokens

TOK = char_tokenizer()
THINK = ThinkTokens(2, 3)
NONE = ThinkTokens(None, None)
EOS = [1]
A, B = TOK.encode("a")[0], TOK.encode("b")[0]


def acc(prompt, gen, think=THINK):
    return account(prompt, gen, think, EOS, TOK.decode)


def test_closed_span_counts_tokens_between_delimiters():
    a = acc([A], [2, A, A, A, 3, B, B, 1])
    assert (a.reasoning_tokens, a.answer_tokens, a.finished_thinking) == (3, 2, True)
    assert a.span == (1, 4) and a.response_start == 5


def test_never_closed_is_censored_at_budget():
    a = acc([A], [2, A, A, A, A])
    assert (a.reasoning_tokens, a.answer_tokens, a.finished_thinking) == (4, 0, False)


def test_prompt_ending_in_think_starts_span_at_first_generated_token():
    prompt = [A, 2, TOK.encode("\n")[0]]
    assert prompt_opens_think(prompt, THINK)
    a = acc(prompt, [A, A, 3, B, 1])
    assert (a.reasoning_tokens, a.answer_tokens, a.finished_thinking) == (2, 1, True)


def test_prompt_with_closed_think_does_not_open():
    assert not prompt_opens_think([2, A, 3, A], THINK)


def test_think_token_inside_answer_is_answer_text():
    a = acc([A], [2, A, 3, B, 2, B, 3, 1])
    assert (a.reasoning_tokens, a.answer_tokens) == (1, 4)


def test_no_think_opened_means_zero_reasoning():
    a = acc([A], [B, B, 1])
    assert (a.reasoning_tokens, a.answer_tokens, a.finished_thinking) == (0, 2, True)


def test_no_think_model_counts_tokens_before_answer_marker():
    gen = TOK.encode("so 1+1 is 2. Answer: 10") + EOS
    a = acc([A], gen, NONE)
    assert a.reasoning_tokens == len("so 1+1 is 2. ")
    assert a.answer_tokens == len("Answer: 10") and a.finished_thinking


def test_no_think_model_uses_last_marker_and_boxed():
    gen = TOK.encode("Answer: 1 wait. \\boxed{2}")
    a = acc([A], gen, NONE)
    assert a.reasoning_tokens == len("Answer: 1 wait. ")


def test_no_think_model_without_marker_cut_at_budget_is_censored():
    a = acc([A], TOK.encode("thinking"), NONE)
    assert (a.reasoning_tokens, a.finished_thinking) == (8, False)
    b = acc([A], TOK.encode("thinking") + EOS, NONE)
    assert (b.reasoning_tokens, b.finished_thinking) == (8, True)


def test_think_tokens_must_be_single_ids():
    assert think_tokens(TOK, "<think>", "</think>") == THINK
    with pytest.raises(ValueError, match="no single token for '<reason>'"):
        think_tokens(TOK, "<reason>", "</think>", model="m")
    assert not think_tokens(TOK, None, None).enabled
