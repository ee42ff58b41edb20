"""Prompt ids hashes: an upstream template change is caught and the first changed item named."""

from __future__ import annotations

import hashlib

import pytest
import real_tokenizers as rt

from experiments.generation.prompts import (
    budget_summary,
    check_prompts,
    first_difference,
    ids_hash,
    item_hashes,
    prompt_ids_hash,
    prompt_record,
)
from hooks.engines.hf_loop import encode_prompts

PROMPTS = {"a": "1+1=?", "b": "Is 7 prime?", "c": "Name a colour."}


def test_hashes_are_sha256_of_the_ids_and_ignore_item_order():
    assert ids_hash([1, 20, 300]) == hashlib.sha256(b"1,20,300").hexdigest()[:16]
    ids = {"a": [1, 2], "b": [3]}
    assert prompt_ids_hash(ids) == prompt_ids_hash(dict(reversed(ids.items())))
    assert prompt_ids_hash(ids) != prompt_ids_hash({"a": [1, 2], "b": [4]})
    assert prompt_ids_hash(ids) != prompt_ids_hash({"a": [1, 2], "c": [3]})  # ids belong to items
    assert prompt_ids_hash(item_hashes(ids)) == prompt_ids_hash(ids)  # hashes stand for ids
    record = prompt_record(ids)
    assert record == {"prompt_ids_hash": prompt_ids_hash(ids), "prompt_hashes": item_hashes(ids)}


def test_the_r1_template_update_changes_every_prompt_and_the_first_item_is_named():
    old, new = rt.r1_distill_qwen(old_template=True), rt.r1_distill_qwen()
    before = dict(zip(PROMPTS, encode_prompts(old, list(PROMPTS.values()))))
    after = dict(zip(PROMPTS, encode_prompts(new, list(PROMPTS.values()))))
    assert all(after[k] == before[k] + [151648, new.convert_tokens_to_ids("\n")] for k in PROMPTS)
    assert first_difference(before, after) == "a"
    assert first_difference(before, before) is None
    with pytest.raises(ValueError, match=r"t\.parquet.*item 'a' \(first of 3 changed\)"):
        check_prompts(item_hashes(before), after, "t.parquet")
    # a rerun on other items, or a subset, is no difference; one changed item is found
    assert first_difference(before, {"d": [1]}) is None
    assert first_difference(before, {"c": before["c"], "b": [9]}) == "b"
    check_prompts(before, {"c": before["c"]}, "t.parquet")


def test_budget_summary_counts_items_the_context_cut():
    got = budget_summary({"a": 100, "b": 40, "c": 100}, 100, 140)
    assert got == dict(max_new_tokens=100, max_model_len=140, items_cut_by_context=1, min_budget=40)
