"""The encoded prompts of a run: their hash, where two runs' prompts differ, the budget they got.

A template change upstream (R1-Distill's templates started to append ``<think>\\n`` in 2025), a
new tokenizer revision or another system prompt changes the token ids a model is prompted with
while every setting handan compares stays the same. So traces metadata and store manifests record
a hash of the encoded prompt ids — one per item (``item_hashes``) and one over the run
(``prompt_ids_hash``) — and a resume whose prompt ids differ for an item already generated is
refused, naming the first such item (``check_prompts``).

``budget_summary``: a prompt plus its generation must fit the model's context, so each item's
budget is ``min(max_new_tokens, max_model_len - prompt length)`` (``traces.budgets``; a trace cut
there is censored like one cut by ``max_new_tokens``); the summary of those budgets is what the
traces metadata records as the model's effective budget.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from experiments.errors import SettingsMismatch

IdsOrHash = Sequence[int] | str


def ids_hash(ids: Sequence[int]) -> str:
    """sha256 (first 16 hex digits) of one prompt's token ids."""
    return hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:16]


def item_hashes(ids_by_item: Mapping[str, IdsOrHash]) -> dict[str, str]:
    """``{item_id: ids_hash}``; values that already are hashes are kept."""
    return {str(k): v if isinstance(v, str) else ids_hash(v) for k, v in ids_by_item.items()}


def prompt_ids_hash(ids_by_item: Mapping[str, IdsOrHash]) -> str:
    """One sha256 over every item's prompt ids, independent of the items' order."""
    lines = "".join(f"{k}\t{h}\n" for k, h in sorted(item_hashes(ids_by_item).items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def first_difference(old: Mapping[str, IdsOrHash], new: Mapping[str, IdsOrHash]) -> str | None:
    """The first item of ``new`` (in its order) that ``old`` holds with other prompt ids; items
    only one side has are no difference (a rerun may add or leave out items)."""
    before, now = item_hashes(old), item_hashes(new)
    return next((k for k, h in now.items() if k in before and before[k] != h), None)


def check_prompts(old: Mapping[str, IdsOrHash], new: Mapping[str, IdsOrHash], where) -> None:
    """SettingsMismatch naming the first item whose encoded prompt differs from the one ``where``
    (a traces file or store) was made with."""
    item = first_difference(old, new)
    if item is None:
        return
    before, now = item_hashes(old), item_hashes(new)
    changed = sum(1 for k, h in now.items() if k in before and before[k] != h)
    raise SettingsMismatch(
        f"{where} was made with other prompt token ids: item {item!r} (first of {changed} "
        "changed) encodes differently now — a changed chat template, tokenizer revision, system "
        "prompt or template_kwargs. Pin the spec's revision to the one the run used, or write to "
        "another --out."
    )


def prompt_record(ids_by_item: Mapping[str, IdsOrHash]) -> dict:
    """What traces metadata and store manifests record about the prompts."""
    return {
        "prompt_ids_hash": prompt_ids_hash(ids_by_item),
        "prompt_hashes": item_hashes(ids_by_item),
    }


def budget_summary(budgets: Mapping[str, int], max_new_tokens: int, max_model_len) -> dict:
    """The effective budget a model ran with (recorded in traces metadata): the context, how many
    items the context cut below ``max_new_tokens`` and the smallest budget any item got."""
    cut = [b for b in budgets.values() if b < max_new_tokens]
    return dict(
        max_new_tokens=max_new_tokens,
        max_model_len=max_model_len,
        items_cut_by_context=len(cut),
        min_budget=min(budgets.values(), default=max_new_tokens),
    )
