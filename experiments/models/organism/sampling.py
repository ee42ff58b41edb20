"""Generation and scoring for the organism: batched ``model.generate`` and the Traces-table fields.

Definitions (the Traces contract, counted on token ids by ``hooks.accounting``): for a model with
think delimiters (teacher, student), ``reasoning_tokens`` = tokens strictly between the first
``<think>`` and the following ``</think>`` (0 when the model writes no think span; everything
after ``<think>`` when it never closes it, with ``finished_thinking`` False); for the baseline
(``delimited=False``), the tokens before the last ``Answer:`` (the base-model rule).
``response`` = the text after the reasoning span, special tokens removed; ``answer_tokens`` = its
tokens up to, not including, ``<|end|>``; ``correct`` = the task's checker
(``experiments.data.checkers``) on the response, False for an unfinished span.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from experiments.data.checkers import get_checker
from experiments.models.organism.tokenizer import THINK_CLOSE, THINK_OPEN
from hooks.accounting import ThinkTokens, account, think_tokens


def chat_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> str:
    """The prompt text as the model sees it (chat template with the generation prompt)."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )


@torch.no_grad()
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    temperature: float | None = None,
    batch_size: int = 256,
) -> list[list[int]]:
    """New token ids per prompt, cut after the first ``<|end|>`` (kept). Greedy when
    ``temperature`` is None, else plain sampling at that temperature (no top-k/top-p); sampling
    draws from torch's global generator, which the caller seeds."""
    model.eval()
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_k": None, "top_p": None}
        if temperature is not None
        else {"do_sample": False}
    )
    eos = tokenizer.eos_token_id
    out: list[list[int]] = []
    for start in range(0, len(prompts), batch_size):
        chunk = [chat_prompt(tokenizer, p) for p in prompts[start : start + batch_size]]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(model.device)
        ids = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=eos,
            **sampling,
        )[:, enc["input_ids"].shape[1] :]
        for row in ids.tolist():
            out.append(row[: row.index(eos) + 1] if eos in row else row)
    return out


@dataclass(frozen=True)
class Scored:
    """One generated sample, scored (fields as in the Traces table)."""

    reasoning_tokens: int
    answer_tokens: int
    finished_thinking: bool
    response: str
    correct: bool
    text: str


@functools.lru_cache(maxsize=4)
def _think(tokenizer: PreTrainedTokenizerBase) -> ThinkTokens:
    """The organism's think delimiter ids, resolved once per tokenizer (score runs per sample)."""
    return think_tokens(tokenizer, THINK_OPEN, THINK_CLOSE, model="organism")


def score(
    tokenizer: PreTrainedTokenizerBase,
    new_ids: Sequence[int],
    answer: str,
    task: str,
    *,
    delimited: bool = True,
) -> Scored:
    """Split a generated sequence into reasoning span and response (``hooks.accounting``, the
    same rules as the Traces table) and check the answer with ``task``'s checker;
    ``delimited=False`` for the baseline, which reasons without think delimiters."""
    think = _think(tokenizer) if delimited else ThinkTokens(None, None)
    ids = [t for t in new_ids if t != tokenizer.pad_token_id]
    acc = account([], ids, think, [tokenizer.eos_token_id], tokenizer.decode)
    body = [t for t in ids if t != tokenizer.eos_token_id]
    response = (
        tokenizer.decode(body[acc.response_start :], skip_special_tokens=True)
        if acc.finished_thinking
        else ""
    )
    return Scored(
        reasoning_tokens=acc.reasoning_tokens,
        answer_tokens=acc.answer_tokens,
        finished_thinking=acc.finished_thinking,
        response=response,
        correct=acc.finished_thinking and get_checker(task)(response, answer),
        text=tokenizer.decode(list(new_ids), skip_special_tokens=False),
    )
