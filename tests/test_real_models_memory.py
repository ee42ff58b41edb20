"""Memory pre-flight on the real architectures' configs (built locally, no hub): KV per token,
parameter counts against a hand count, the batch that fits and the refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import Qwen2Config

from experiments.models.memory import (
    GiB,
    fit_batch,
    kv_bytes_per_token,
    parameter_count,
    plan_batch,
    workspace_bytes,
)

# config.json of DeepSeek-R1-Distill-Qwen-1.5B and of the Qwen2.5-32B architecture (QwQ-32B,
# R1-Distill-Qwen-32B)
R1_1_5B = dict(
    vocab_size=151936,
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    tie_word_embeddings=False,
)
QWEN_32B = dict(
    vocab_size=152064,
    hidden_size=5120,
    intermediate_size=27648,
    num_hidden_layers=64,
    num_attention_heads=40,
    num_key_value_heads=8,
    tie_word_embeddings=False,
)


def _hand_count(c: dict) -> int:
    """Qwen2 parameters by hand: embeddings + lm_head, per layer q/k/v (with bias), o, gated MLP,
    two RMSNorms, and the final norm."""
    h, i, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    kv = c["num_key_value_heads"] * h // c["num_attention_heads"]
    layer = (h * h + h) + 2 * (h * kv + kv) + h * h + 3 * h * i + 2 * h
    return 2 * v * h + c["num_hidden_layers"] * layer + h


def test_kv_per_token_is_28_kib_for_the_1_5b_and_256_kib_for_32b():
    assert kv_bytes_per_token(Qwen2Config(**R1_1_5B), "bfloat16") == 28 * 1024
    assert kv_bytes_per_token(Qwen2Config(**QWEN_32B), "bfloat16") == 256 * 1024
    assert kv_bytes_per_token(Qwen2Config(**R1_1_5B), "float32") == 56 * 1024


def test_parameter_count_equals_the_hand_count():
    for c, billions in ((R1_1_5B, 1.777), (QWEN_32B, 32.76)):
        n = parameter_count(Qwen2Config(**c))
        assert n == _hand_count(c)
        assert abs(n / 1e9 - billions) < 0.01


def test_the_issue_case_qwq_32b_at_batch_32_by_8192_fits_a_few_rows_on_an_h100():
    config = Qwen2Config(**QWEN_32B)
    h100 = int(80 * GiB * 0.9)  # an 80 GB H100, 90% of it
    plan = plan_batch(config, "bfloat16", requested=32, prompt_len=300, budget=8192, available=h100)
    weights = _hand_count(QWEN_32B) * 2
    per_row = (300 + 8192) * 256 * 1024
    # batch 32 needs weights + ~67 GiB of cache: out of memory on 80 GB
    assert (weights + 32 * per_row) / GiB > 120

    def need(b):
        return weights + b * per_row + workspace_bytes(config, "bfloat16", b, 300)

    assert plan.batch == 5 and need(5) <= h100 < need(6)
    with pytest.raises(ValueError, match=r"does not fit: 61\.0 GiB of weights.*256 KiB.*vllm"):
        plan_batch(
            config, "bfloat16", requested=32, prompt_len=300, budget=8192, available=int(62 * GiB)
        )


def test_fit_batch_keeps_a_batch_that_fits_shrinks_one_that_does_not_and_refuses_none():
    from tiny import tiny_model

    from experiments.generation import GenerationConfig
    from experiments.models.memory import fit_config

    model = tiny_model("qwen2")  # 2 layers, 2 kv heads of 16: 512 B per token in float32
    lens, budgets = [5, 9], [100, 60]  # sized for the longest prompt and the largest budget
    assert fit_batch(model, lens, budgets, requested=8) == 8  # CPU: no pre-flight
    weights = sum(p.numel() * 4 for p in model.parameters())
    per_row = (9 + 100) * 512 + workspace_bytes(model.config, "float32", 1, 9)
    assert fit_batch(model, lens, budgets, requested=8, available=weights + 8 * per_row) == 8
    with pytest.warns(UserWarning, match="batch_size 8 does not fit.*batch_size 3"):
        assert fit_batch(model, lens, budgets, requested=8, available=weights + 3 * per_row) == 3
    with pytest.raises(ValueError, match="does not fit.*max-new-tokens"):
        fit_batch(model, lens, budgets, requested=8, available=weights + per_row // 2)
    config = GenerationConfig(batch_size=8)
    prompts, limits = {"a": [1] * 5, "b": [2] * 9}, {"a": 100, "b": 60}
    assert fit_config(model, config, prompts, limits, model_name="tiny") is config


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_batch_reads_the_gpu_total():
    from tiny import tiny_model

    model = tiny_model("qwen2").cuda()
    assert fit_batch(model, [5], [10], requested=4) == 4


def test_the_shipped_gpu_config_fits_one_h100_and_says_which_model_needs_more():
    """experiments/pipeline/configs/r1-distill-1.5b.yaml on one 80 GB H100 (90% of it), prompts of
    300 tokens: the 1.5B models at the full batch, QwQ-32B at 5 rows (batch 32 needs two)."""
    from experiments.models.specs import get_spec
    from experiments.pipeline.config import RunConfig

    root = Path(__file__).resolve().parents[1]
    cfg = RunConfig.from_yaml(root / "experiments/pipeline/configs/r1-distill-1.5b.yaml")
    arch = {"qwen-1.5b": Qwen2Config(**R1_1_5B), "qwq": Qwen2Config(**QWEN_32B)}  # by family
    h100 = int(80 * GiB * 0.9)
    got = {}
    for name in cfg.models:
        spec = get_spec(name)
        settings = cfg.generation.resolve(spec)
        budget = min(settings.max_new_tokens, (spec.max_model_len or 10**9) - 300)
        kw = dict(requested=settings.batch_size, prompt_len=300, budget=budget)
        one = plan_batch(arch[spec.family], "bfloat16", available=h100, **kw).batch
        two = plan_batch(arch[spec.family], "bfloat16", available=2 * h100, **kw).batch
        got[name] = (settings.batch_size, one, two)
    assert got == {
        "qwq-32b": (32, 5, 32),
        "r1-distill-qwen-1.5b": (32, 32, 32),
        "qwen2.5-math-1.5b": (32, 32, 32),
    }
