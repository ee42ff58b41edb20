"""`train_all` end to end on the fast budget: artefacts, reloading, curves, determinism."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

from experiments.models.organism import ROLES, checkpoint_dir, train_all


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("organism")
    return out, train_all(out, seed=0, budget="fast", progress=False)


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
    for result in summary["models"].values():
        by_item = pd.DataFrame(result["by_item"]).T
        assert len(by_item) == summary["evaluation_items"]
        assert result["accuracy"]["all"] == pytest.approx(by_item["correct"].astype(float).mean())
        assert result["reasoning_tokens"]["mean"] == pytest.approx(
            by_item["reasoning_tokens"].astype(float).mean()
        )


@pytest.mark.slow
def test_sft_loss_falls_in_every_sft_stage(trained):
    curves = pd.read_csv(trained[0] / "curves.csv")
    for stage in ("teacher_sft", "baseline_sft", "student_sft"):
        loss = curves[(curves["stage"] == stage) & (curves["metric"] == "loss")]["value"].to_numpy()
        assert loss[:3].mean() > loss[-3:].mean(), stage


@pytest.mark.slow
def test_checkpoints_reload_with_auto_classes_and_generate(trained):
    out, _ = trained
    sizes = {}
    for role in ROLES:
        model = AutoModelForCausalLM.from_pretrained(checkpoint_dir(role, out))
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
def test_same_seed_gives_the_same_weights(trained, tmp_path):
    out, _ = trained
    train_all(tmp_path, seed=0, budget="fast", progress=False)
    for role in ROLES:
        first = load_file(checkpoint_dir(role, out) / "model.safetensors")
        again = load_file(checkpoint_dir(role, tmp_path) / "model.safetensors")
        assert first.keys() == again.keys()
        assert all(torch.equal(first[k], again[k]) for k in first), role


def test_bad_arguments_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="unknown organism role"):
        checkpoint_dir("oracle")
    with pytest.raises(FileNotFoundError, match="handan organism train --out"):
        checkpoint_dir("teacher", tmp_path)
    with pytest.raises(ValueError, match="unknown budget"):
        train_all(tmp_path, budget="huge")
