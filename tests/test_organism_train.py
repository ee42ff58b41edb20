"""`train_all` end to end on the fast budget: artefacts, reloading, curves, determinism per seed."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

from experiments.models.organism import ROLES, checkpoint_dir, train_all
from experiments.models.organism.layout import SHIPPED, seed_dir
from experiments.models.organism.task import TASKS


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("organism")
    return out, train_all(out, seed=0, budget="fast", progress=False)


def _weights(folder):
    return {role: load_file(checkpoint_dir(role, folder) / "model.safetensors") for role in ROLES}


@pytest.mark.slow
def test_fast_training_writes_every_artefact(trained):
    out, paths = trained
    assert set(paths) == set(ROLES)
    assert all(paths[role] == checkpoint_dir(role, out) for role in ROLES)
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves["stage"]) == {"teacher_sft", "teacher_rl", "baseline_sft", "student_sft"}
    rl = curves[curves["stage"] == "teacher_rl"]
    assert set(rl["metric"]) == {"reward", "accuracy", "reasoning_tokens", "loss"}
    assert (out / "curves.png").stat().st_size > 1000
    summary = json.loads((out / "training.json").read_text())
    assert summary["wall_s"]["total"] == pytest.approx(
        sum(v for k, v in summary["wall_s"].items() if k != "total"), abs=0.3
    )
    assert summary["threads"] == 1 and set(summary["training_items"]) == set(TASKS)
    for result in summary["models"].values():
        by_item = pd.DataFrame(result["by_item"]).T
        assert len(by_item) == summary["evaluation_items"]
        assert result["accuracy"]["all"] == pytest.approx(by_item["correct"].astype(float).mean())
        assert set(result["accuracy"]) == {"all", *TASKS}
        assert result["reasoning_tokens"]["mean"] == pytest.approx(
            by_item["reasoning_tokens"].astype(float).mean()
        )


@pytest.mark.slow
def test_training_restores_the_callers_thread_count(trained, tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train_all(tmp_path, seed=5, budget="fast", progress=False, threads=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_sft_loss_falls_in_every_sft_stage(trained):
    curves = pd.read_csv(trained[0] / "curves.csv")
    for stage in ("teacher_sft", "baseline_sft", "student_sft"):
        loss = curves[(curves["stage"] == stage) & (curves["metric"] == "loss")]["value"].to_numpy()
        assert loss[:3].mean() > loss[-3:].mean(), stage


@pytest.mark.slow
def test_checkpoints_are_fp16_and_reload_with_auto_classes(trained):
    out, _ = trained
    sizes = {}
    for role in ROLES:
        stored = load_file(checkpoint_dir(role, out) / "model.safetensors")
        assert {t.dtype for t in stored.values()} == {torch.float16}
        model = AutoModelForCausalLM.from_pretrained(checkpoint_dir(role, out), dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir(role, out))
        assert isinstance(model, LlamaForCausalLM) and model.dtype == torch.float32
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "1+1"}], add_generation_prompt=True, tokenize=False
        )
        enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        new = model.generate(**enc, max_new_tokens=4, do_sample=False)
        assert new.shape[1] > enc["input_ids"].shape[1]
        sizes[role] = sum(p.numel() for p in model.parameters())
    assert sizes["teacher"] == sizes["teacher_sft"] > sizes["baseline"] == sizes["student"]


@pytest.mark.slow
def test_same_seed_gives_the_same_weights_another_seed_others(trained, tmp_path):
    out, _ = trained
    first = _weights(out)
    train_all(tmp_path / "again", seed=0, budget="fast", progress=False)
    again = _weights(tmp_path / "again")
    for role in ROLES:
        assert first[role].keys() == again[role].keys()
        assert all(torch.equal(first[role][k], again[role][k]) for k in first[role]), role
    train_all(tmp_path / "other", seed=1, budget="fast", progress=False)
    other = _weights(tmp_path / "other")
    for role in ROLES:
        assert not all(torch.equal(first[role][k], other[role][k]) for k in first[role]), role


def test_checkpoint_names_and_bad_arguments_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="unknown organism checkpoint"):
        checkpoint_dir("oracle")
    with pytest.raises(ValueError, match="unknown organism checkpoint"):
        checkpoint_dir("teacher-s1", tmp_path)  # a train_all folder holds one seed
    with pytest.raises(FileNotFoundError, match="handan organism train --out"):
        checkpoint_dir("teacher", tmp_path)
    with pytest.raises(FileNotFoundError, match="handan organism train --seed 97"):
        checkpoint_dir("student-s97")
    assert seed_dir(2) == SHIPPED / "seed2" and seed_dir(1, tmp_path) == tmp_path / "seed1"
    with pytest.raises(ValueError, match="unknown budget"):
        train_all(tmp_path, budget="huge")
