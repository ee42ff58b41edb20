"""The checkpoints shipped in experiments/models/organism/checkpoints/seed{N}: they load offline and
behave as their training.json says (these tests fail only if the shipped models are bad or
missing)."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

from experiments.models.organism import checkpoint_dir, organism_items
from experiments.models.organism.layout import SHIPPED, seed_dir
from experiments.models.organism.sampling import generate, score
from experiments.models.specs import ORGANISM_SEEDS, REGISTRY, organism_name


@pytest.fixture(scope="module")
def sample():
    items = organism_items()
    return items.groupby("task").sample(8, random_state=0)  # 40 items, every task


def _run(role, items, *, seed=0):
    name = role if not seed else f"{role}-s{seed}"
    model = AutoModelForCausalLM.from_pretrained(checkpoint_dir(name), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir(name))
    new = generate(model, tokenizer, list(items["prompt"]), max_new_tokens=128)
    delimited = role != "baseline"
    return [
        score(tokenizer, ids, a, t, delimited=delimited)
        for ids, a, t in zip(new, items["answer"], items["task"])
    ]


def test_every_seed_ships_small_fp16_llamas_registered_by_name():
    total = sum(f.stat().st_size for f in SHIPPED.rglob("*") if f.is_file())
    assert total < 20 * 2**20
    for seed in ORGANISM_SEEDS:
        assert json.loads((seed_dir(seed) / "training.json").read_text())["seed"] == seed
        for role in ("teacher", "baseline", "student"):
            name = role if not seed else f"{role}-s{seed}"
            folder = checkpoint_dir(name)
            assert (folder / "model.safetensors").stat().st_size < 2 * 2**20
            model = AutoModelForCausalLM.from_pretrained(folder)
            assert isinstance(model, LlamaForCausalLM) and model.dtype == torch.float16
            tokenizer = AutoTokenizer.from_pretrained(folder)
            assert len(tokenizer("<think></think>", add_special_tokens=False).input_ids) == 2
            assert REGISTRY[organism_name(role, seed)].source == f"organism:{name}"


@pytest.mark.parametrize("role", ["teacher", "baseline", "student"])
def test_greedy_outputs_match_training_json(sample, role):
    recorded = json.loads((seed_dir(0) / "training.json").read_text())["models"][role]["by_item"]
    scored = _run(role, sample)
    for item_id, s in zip(sample["item_id"], scored):
        assert recorded[item_id] == {"correct": s.correct, "reasoning_tokens": s.reasoning_tokens}


def test_baseline_reasons_in_plain_text_and_the_student_thinks(sample):
    baseline = _run("baseline", sample.iloc[::4])
    assert all("<think>" not in s.text and "Answer:" in s.text for s in baseline)
    assert sum(s.reasoning_tokens > 0 for s in baseline) >= 0.9 * len(baseline)
    student = _run("student", sample.iloc[::4])
    assert all(s.text.startswith("<think>") for s in student)
