"""One Traces row from token ids: accounting (``hooks.accounting``), the response, the grade.

The same function serves every engine and imported traces, so a row means the same whatever
produced its ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence


def request_seed(seed: int, item_id: str, sample: int) -> int:
    """The seed of one (item, sample) request: 63 bits of sha256 over (run seed, item_id,
    sample), so a request draws the same tokens whatever else runs with it or before it."""
    digest = hashlib.sha256(f"{seed}\x00{item_id}\x00{sample}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of the tokenizer's vocabulary (token → id, added tokens included): equal
    fingerprints mean token ids mean the same tokens."""
    from experiments.contracts import stable_hash

    return stable_hash(sorted(tokenizer.get_vocab().items()))


def trace_row(
    *,
    model: str,
    item,
    sample: int,
    prompt_ids: Sequence[int],
    generated_ids: Sequence[int],
    finish_reason: str,
    think,
    eos_ids: Sequence[int],
    tokenizer,
    checker: Callable[[str], Callable[[str, str], bool]],
) -> dict:
    """The Traces row of ``item`` (a row of the Items table) for one generated sequence."""
    from hooks.accounting import account

    acc = account(prompt_ids, generated_ids, think, eos_ids, tokenizer.decode)
    body = [t for t in generated_ids if t not in set(eos_ids)]
    response = (
        tokenizer.decode(body[acc.response_start :], skip_special_tokens=True)
        if acc.finished_thinking
        else ""
    )
    return dict(
        model=model,
        item_id=item["item_id"],
        task=item["task"],
        sample=int(sample),
        prompt_tokens=len(prompt_ids),
        reasoning_tokens=acc.reasoning_tokens,
        answer_tokens=acc.answer_tokens,
        finished_thinking=acc.finished_thinking,
        response=response,
        correct=bool(acc.finished_thinking and checker(item["task"])(response, item["answer"])),
        text=tokenizer.decode(body),
        prompt_ids=list(prompt_ids),
        generated_ids=list(generated_ids),
        finish_reason=finish_reason,
    )
