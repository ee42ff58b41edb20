"""The checkpoints shipped in experiments/models/organism/checkpoints: they load offline and behave as
training.json says (these tests fail only if the shipped models are bad or missing)."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

from experiments.models.organism import ROLES, checkpoint_dir, organism_items
from experiments.models.organism.sampling import generate, score
from experiments.models.organism.train import SHIPPED


@pytest.fixture(scope="module")
def sample():
    items = organism_items()
    return items.iloc[::9]  # 44 items, both tasks, every carry count


@pytest.fixture(scope="module")
def summary():
    return json.loads((SHIPPED / "training.json").read_text())


def _run(role, items):
    model = AutoModelForCausalLM.from_pretrained(checkpoint_dir(role))
    tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir(role))
    new = generate(model, tokenizer, list(items["prompt"]), max_new_tokens=128)
    return model, tokenizer, [score(tokenizer, ids, a) for ids, a in zip(new, items["answer"])]


def test_shipped_checkpoints_are_small_fp32_llamas_with_the_organism_tokenizer():
    for role in ROLES:
        folder = checkpoint_dir(role)
        assert (folder / "model.safetensors").stat().st_size < 5 * 2**20
        model = AutoModelForCausalLM.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        assert isinstance(model, LlamaForCausalLM) and model.dtype == torch.float32
        assert len(tokenizer("<think></think>", add_special_tokens=False).input_ids) == 2


def test_shipped_teacher_is_accurate_and_its_greedy_outputs_match_training_json(sample, summary):
    _, _, scored = _run("teacher", sample)
    correct = torch.tensor([s.correct for s in scored], dtype=torch.float)
    tasks = sample["task"].tolist()
    for task in ("binary_add", "binary_sub"):
        mask = torch.tensor([t == task for t in tasks])
        assert correct[mask].mean() >= 0.9, task
    recorded = summary["models"]["teacher"]["by_item"]
    agree = [
        recorded[i]["reasoning_tokens"] == s.reasoning_tokens
        for i, s in zip(sample["item_id"], scored)
    ]
    assert sum(agree) >= 0.95 * len(agree)


def test_shipped_baseline_answers_directly_and_student_thinks(sample):
    _, _, baseline = _run("baseline", sample.iloc[:8])
    assert all(s.reasoning_tokens == 0 and "<think>" not in s.text for s in baseline)
    _, _, student = _run("student", sample.iloc[:8])
    assert all(s.text.startswith("<think>") for s in student)
