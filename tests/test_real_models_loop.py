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


def _items(n=3):
    import pandas as pd

    return pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(n)],
            "task": "toy",
            "prompt": [f"q{'?' * k}" for k in range(n)],
            "answer": "x",
        }
    )


def _run(model, tok, tmp_path, name, store=True, **cfg):
    from experiments.data.answers import exact_match
    from experiments.generation import GenerationConfig
    from experiments.generation.traces import generate_traces
    from experiments.models.specs import ModelSpec

    spec = ModelSpec(name="r1", source="memory", stop_token_ids=[151643])
    config = GenerationConfig(**{"samples": 2, "max_new_tokens": 6, "batch_size": 4, **cfg})
    return generate_traces(
        model,
        tok,
        spec,
        _items(),
        config=config,
        out=tmp_path / f"{name}.parquet",
        store=tmp_path / "store" if store else None,
        sites=["resid_post.0"],
        positions=["prompt_end"],
        checker=lambda _: exact_match,
        progress=False,
    )


def test_the_store_manifest_records_prompt_hashes_and_refuses_other_prompts(tmp_path):
    import json

    import pytest
    import real_tokenizers as rt

    from experiments.generation.prompts import prompt_ids_hash

    new, old = rt.r1_distill_qwen(), rt.r1_distill_qwen(old_template=True)
    model = rt.tiny_lm(new, 151643)
    _run(model, old, tmp_path, "a")
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    ids = dict(zip(_items()["item_id"], encode_prompts_for(old)))
    assert manifest["prompts"]["prompt_ids_hash"] == prompt_ids_hash(ids)
    # fresh traces (another --out), same store, the updated template: refused at item i0
    with pytest.raises(ValueError, match=r"store was made with other prompt token ids: item 'i0'"):
        _run(model, new, tmp_path, "b")
    _run(model, old, tmp_path, "a")  # the same prompts resume traces and store


def encode_prompts_for(tok):
    from hooks.engines.hf_loop import encode_prompts

    return encode_prompts(tok, _items()["prompt"].tolist())


def test_generation_uses_the_batch_the_memory_pre_flight_allows(tmp_path, monkeypatch):
    import pytest
    import real_tokenizers as rt

    from experiments.generation.tracefile import read_traces_meta
    from experiments.models import memory

    tok = rt.r1_distill_qwen()
    model = rt.tiny_lm(tok, 151643)
    weights = sum(p.numel() * 4 for p in model.parameters())
    longest = max(map(len, encode_prompts_for(tok)))
    row = (longest + 6) * memory.kv_bytes_per_token(model.config, "float32")
    row += memory.workspace_bytes(model.config, "float32", 1, longest)
    # a "GPU" of weights + 2 rows at 90%: the requested batch of 4 becomes 2
    monkeypatch.setattr(memory, "device_memory", lambda m: int((weights + 2 * row) / 0.9) + 1)
    with pytest.warns(UserWarning, match="batch_size 4 does not fit.*batch_size 2"):
        small = _run(model, tok, tmp_path, "fit", store=False)
    assert read_traces_meta(tmp_path / "fit.parquet")["recorded"]["batch_size"] == 2
    monkeypatch.undo()
    full = _run(model, tok, tmp_path, "full", store=False)
    assert small.equals(full)  # the batch size changes only the speed


def test_generation_shows_per_token_progress_with_the_hf_engine(tmp_path):
    import real_tokenizers as rt

    from experiments.data.answers import exact_match
    from experiments.generation import GenerationConfig
    from experiments.generation.traces import generate_traces
    from experiments.models.specs import ModelSpec
    from hooks.engines.hf import HFEngine

    ticks = []

    class Watched(HFEngine):
        def generate(self, requests, decoding, observer=None):
            shown = self.on_token
            self.on_token = lambda *a: (ticks.append(a), shown(*a))
            try:
                return super().generate(requests, decoding, observer)
            finally:
                self.on_token = shown

    tok = rt.r1_distill_qwen()
    engine = Watched(rt.tiny_lm(tok, 151643), tok.pad_token_id)
    generate_traces(
        engine,
        tok,
        ModelSpec(name="r1", source="memory"),
        _items(2),
        config=GenerationConfig(samples=1, max_new_tokens=5, batch_size=2),
        out=tmp_path / "t.parquet",
        checker=lambda _: exact_match,
        progress=True,
    )
    assert [t[:2] for t in ticks] == [(k, 5) for k in range(1, 6)] and ticks[-1][2] == 0
    assert engine.on_token is None  # not left pointing at a closed bar
