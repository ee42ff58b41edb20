"""Exact reasoning-token accounting on token ids.

Rules (documented in the README):
- A model **with** think delimiters: the reasoning span is the tokens strictly between the think
  opener and the first closer after it. The opener may already sit in the prompt (templates that end
  in ``<think>\\n``): the span then starts at the first generated token. A think token that appears
  after the span is closed is ordinary answer text. A span never closed is censored:
  ``finished_thinking=False``, every generated token after the opener counts as reasoning (the
  trace is counted at its budget) and the response is empty. A generation that never opens a span
  has 0 reasoning tokens.
- A model **without** think delimiters (pre-distillation baselines): the reasoning span is every
  token before the final-answer marker (the last ``\\boxed{`` or ``Answer:``); without a marker,
  the whole output is reasoning, ``finished_thinking`` is True if the model stopped by itself
  (EOS) and False if it was cut at the budget.
- Delimiters and EOS tokens are never counted; ``answer_tokens`` is what follows the span.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from experiments.errors import InputError

_MARKER = re.compile(r"\\boxed\{|answer\s*[:：]", re.IGNORECASE)


@dataclass(frozen=True)
class ThinkTokens:
    open_id: int | None
    close_id: int | None

    @property
    def enabled(self) -> bool:
        return self.open_id is not None and self.close_id is not None


def think_tokens(
    tokenizer, open_token: str | None, close_token: str | None, *, model: str = "model"
) -> ThinkTokens:
    """Resolve delimiter strings to single token ids, or fail naming the fix."""
    if open_token is None or close_token is None:
        return ThinkTokens(None, None)
    ids = []
    for tok in (open_token, close_token):
        enc = tokenizer.encode(tok, add_special_tokens=False)
        if len(enc) != 1:
            raise InputError(
                f"{model}: the tokenizer has no single token for {tok!r} (it splits into {len(enc)} "
                "tokens). Set think_open/think_close to the model's real delimiters, or to null "
                "for a model without a think span."
            )
        ids.append(enc[0])
    return ThinkTokens(ids[0], ids[1])


@dataclass(frozen=True)
class Accounting:
    reasoning_tokens: int
    answer_tokens: int
    finished_thinking: bool
    span: tuple[int, int]  # [start, end) of the reasoning span in generated-token coordinates
    response_start: int  # generated index where the response (text after the span) starts


def prompt_opens_think(prompt_ids: Sequence[int], think: ThinkTokens) -> bool:
    """True when the prompt ends inside an open think span (e.g. R1 templates ending ``<think>\\n``)."""
    if not think.enabled:
        return False
    ids = list(prompt_ids)
    last_open = max((i for i, t in enumerate(ids) if t == think.open_id), default=-1)
    last_close = max((i for i, t in enumerate(ids) if t == think.close_id), default=-1)
    return last_open > last_close


def account(
    prompt_ids: Sequence[int],
    gen_ids: Sequence[int],
    think: ThinkTokens,
    eos_ids: Sequence[int],
    decode: Callable[[Sequence[int]], str],
) -> Accounting:
    """Account one generated sequence (``gen_ids`` as generated, a final EOS included if any)."""
    gen = list(gen_ids)
    stopped = bool(gen) and gen[-1] in set(eos_ids)
    if stopped:
        gen = gen[:-1]
    n = len(gen)
    if think.enabled:
        if prompt_opens_think(prompt_ids, think):
            start = 0
        elif think.open_id in gen:
            start = gen.index(think.open_id) + 1
        else:
            return Accounting(0, n, True, (0, 0), 0)
        try:
            close = gen.index(think.close_id, start)
        except ValueError:
            return Accounting(n - start, 0, False, (start, n), n)
        return Accounting(close - start, n - close - 1, True, (start, close), close + 1)
    text = decode(gen)
    marks = list(_MARKER.finditer(text))
    if not marks:
        return Accounting(n, 0, stopped, (0, n), n)
    end = _tokens_before(gen, marks[-1].start(), decode)
    return Accounting(end, n - end, True, (0, end), end)


def _tokens_before(gen: list[int], offset: int, decode: Callable[[Sequence[int]], str]) -> int:
    """The largest k with len(decode(gen[:k])) <= offset (binary search; prefix decodes grow
    monotonically in length)."""
    lo, hi = 0, len(gen)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(decode(gen[:mid])) <= offset:
            lo = mid
        else:
            hi = mid - 1
    return lo
