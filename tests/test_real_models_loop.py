"""The HF loop on long batches: per-token progress, and rows cut at the context (per-row budgets)
that never index past a model's positions."""

from __future__ import annotations

import torch
from tiny import tiny_model
from transformers import GPT2Config, GPT2LMHeadModel

from hooks.engines.hf_loop import generate_batch

PROMPTS = [[5, 6, 7], [8, 9, 10, 11, 12, 13], [14]]


def test_progress_reports_tokens_budget_and_rows_still_running():
    model = tiny_model("qwen2", vocab=40)
    with torch.no_grad():  # make EOS (1) likely so rows finish at different steps
        model.lm_head.weight[1] = model.lm_head.weight.mean(0) * 12
    calls = []
    out = generate_batch(
        model,
        PROMPTS,
        max_new_tokens=[12, 6, 12],
        eos_ids=[1],
        pad_id=0,
        temperature=1.0,
        top_p=1.0,
        generator=torch.Generator().manual_seed(2),
        progress=lambda *a: calls.append(a),
    )
    assert [c[0] for c in calls] == list(range(1, len(calls) + 1))
    assert {c[1] for c in calls} == {12} and calls[-1][2] == 0
    lengths = [len(g) for g in out]
    assert len(calls) == max(lengths)
    for tokens, _, running in calls:  # a row of length L is running until its L-th token
        assert running == sum(n > tokens for n in lengths)


def test_rows_cut_by_the_context_stay_inside_learned_positions():
    torch.manual_seed(0)
    config = GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=40, n_positions=16)
    model = GPT2LMHeadModel(config).eval()
    prompts = [[3, 4], [5] * 13]
    budgets = [14, 3]  # max_model_len 16 minus each prompt (+1 spare for the long one)
    for observer in (None, _Seen()):
        together = generate_batch(
            model, prompts, max_new_tokens=budgets, eos_ids=[1], pad_id=0, observer=observer
        )
        alone = [
            generate_batch(model, [p], max_new_tokens=b, eos_ids=[1], pad_id=0)[0]
            for p, b in zip(prompts, budgets)
        ]
        assert together == alone and [len(g) for g in together] == budgets


class _Seen:
    def on_forward(self, step, fed, active):
        pass
