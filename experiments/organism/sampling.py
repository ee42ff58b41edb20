"""Generation and scoring for the organism: batched ``model.generate`` and the Traces-table fields.

Definitions (the Traces contract, counted on token ids): ``reasoning_tokens`` = tokens strictly
between the first ``<think>`` and the following ``</think>`` (0 when the model writes no think
span; everything after ``<think>`` when it never closes it, with ``finished_thinking`` False);
``response`` = the text after ``</think>`` (or the whole text without a think span), special
tokens removed; ``answer_tokens`` = tokens after ``</think>`` up to, not including, ``<|end|>``;
``correct`` = ``exact_match(response, answer)``, False for an unfinished think span.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from experiments.answers import exact_match
from experiments.organism.tokenizer import THINK_CLOSE, THINK_OPEN


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
            **enc, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=eos, **sampling,
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


def score(tokenizer: PreTrainedTokenizerBase, new_ids: Sequence[int], answer: str) -> Scored:
    """Split a generated sequence into think span and response and check the answer."""
    open_id, close_id = tokenizer.convert_tokens_to_ids([THINK_OPEN, THINK_CLOSE])
    ids = [t for t in new_ids if t not in (tokenizer.eos_token_id, tokenizer.pad_token_id)]
    finished, reasoning, after = True, 0, ids
    if open_id in ids:
        start = ids.index(open_id) + 1
        if close_id in ids[start:]:
            stop = ids.index(close_id, start)
            reasoning, after = stop - start, ids[stop + 1 :]
        else:
            finished, reasoning, after = False, len(ids) - start, []
    response = tokenizer.decode(after, skip_special_tokens=True)
    return Scored(
        reasoning_tokens=reasoning,
        answer_tokens=len(after),
        finished_thinking=finished,
        response=response,
        correct=finished and exact_match(response, answer),
        text=tokenizer.decode(list(new_ids), skip_special_tokens=False),
    )
