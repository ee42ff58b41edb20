"""Batched generation: padding invariance, parity with HF generate, deterministic resume, bad input."""

import pandas as pd
import pytest
import torch
from tiny import tiny_model

from experiments.contracts import TRACE_COLUMNS
from experiments.data.answers import exact_match
from experiments.generation import GenerationConfig
from experiments.generation import tracefile as gen_mod
from experiments.generation.traces import generate_traces
from experiments.models.specs import ModelSpec
from hooks.engines.hf_loop import encode_prompts, generate_batch

PROMPTS = ["1+1=", "what is 10 + 11 in binary?", "hello there, general", "x"]


def items(n=6):
    return pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(n)],
            "task": "toy",
            "prompt": [PROMPTS[k % 4] * (1 + k % 3) for k in range(n)],
            "answer": "10",
        }
    )


SPEC = ModelSpec(name="tiny", source="memory")


def checker(task):
    return exact_match


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_left_padded_batch_equals_each_prompt_alone_and_hf_generate(tok, kind):
    model = tiny_model(kind, vocab=len(tok))
    ids = encode_prompts(tok, PROMPTS)
    batched = generate_batch(model, ids, max_new_tokens=12, eos_ids=[1], pad_id=0)
    for p, row in zip(ids, batched):
        alone = generate_batch(model, [p], max_new_tokens=12, eos_ids=[1], pad_id=0)[0]
        assert row == alone
        hf = model.generate(
            torch.tensor([p]),
            attention_mask=torch.ones(1, len(p), dtype=torch.long),
            max_new_tokens=12,
            do_sample=False,
            eos_token_id=1,
            pad_token_id=0,
        )
        assert row == hf[0, len(p) :].tolist()[: len(row)]


def test_sampling_is_reproducible_with_the_same_generator(model, tok):
    ids = encode_prompts(tok, PROMPTS)
    a = generate_batch(
        model,
        ids,
        max_new_tokens=10,
        eos_ids=[1],
        pad_id=0,
        temperature=1.0,
        top_p=0.9,
        generator=torch.Generator().manual_seed(3),
    )
    b = generate_batch(
        model,
        ids,
        max_new_tokens=10,
        eos_ids=[1],
        pad_id=0,
        temperature=1.0,
        top_p=0.9,
        generator=torch.Generator().manual_seed(3),
    )
    c = generate_batch(
        model,
        ids,
        max_new_tokens=10,
        eos_ids=[1],
        pad_id=0,
        temperature=1.0,
        top_p=0.9,
        generator=torch.Generator().manual_seed(4),
    )
    assert a == b and a != c


def test_traces_table_follows_contract(model, tok, tmp_path):
    cfg = GenerationConfig(samples=2, max_new_tokens=8, temperature=1.0, top_p=1.0, batch_size=4)
    t = generate_traces(
        model,
        tok,
        SPEC,
        items(),
        config=cfg,
        out=tmp_path / "t.parquet",
        checker=checker,
        progress=False,
    )
    assert len(t) == 12 and list(t["sample"][:2]) == [0, 1]
    assert (t["reasoning_tokens"] + t["answer_tokens"] <= 8).all()
    pd.testing.assert_frame_equal(t, pd.read_parquet(tmp_path / "t.parquet").astype(TRACE_COLUMNS))
    # the think span never closes in a random model's 8 tokens unless it emits </think>
    opened = t["text"].str.contains("<think>")
    assert (~t.loc[~opened, "finished_thinking"]).sum() == 0


def test_resume_after_kill_equals_clean_run(model, tok, tmp_path, monkeypatch):
    cfg = GenerationConfig(
        samples=2, max_new_tokens=6, temperature=1.0, top_p=0.95, batch_size=4, seed=7
    )
    clean = generate_traces(
        model,
        tok,
        SPEC,
        items(),
        config=cfg,
        out=tmp_path / "clean.parquet",
        checker=checker,
        progress=False,
    )
    real, calls = gen_mod.write_parquet_atomic, {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real(*args, **kwargs)

    monkeypatch.setattr(gen_mod, "write_parquet_atomic", dying)
    with pytest.raises(KeyboardInterrupt):
        generate_traces(
            model,
            tok,
            SPEC,
            items(),
            config=cfg,
            out=tmp_path / "r.parquet",
            checker=checker,
            progress=False,
        )
    assert len(pd.read_parquet(tmp_path / "r.parquet")) == 4  # first batch kept
    monkeypatch.setattr(gen_mod, "write_parquet_atomic", real)
    resumed = generate_traces(
        model,
        tok,
        SPEC,
        items(),
        config=cfg,
        out=tmp_path / "r.parquet",
        checker=checker,
        progress=False,
    )
    pd.testing.assert_frame_equal(clean, resumed)


def test_rerun_on_fewer_items_returns_only_them_and_keeps_the_file(model, tok, tmp_path):
    cfg = GenerationConfig(
        samples=2, max_new_tokens=6, temperature=1.0, top_p=0.95, batch_size=4, seed=2
    )
    out = tmp_path / "t.parquet"
    full = generate_traces(
        model, tok, SPEC, items(), config=cfg, out=out, checker=checker, progress=False
    )
    subset = items().iloc[[4, 1]]  # fewer items, in another order
    again = generate_traces(
        model, tok, SPEC, subset, config=cfg, out=out, checker=checker, progress=False
    )
    assert list(zip(again["item_id"], again["sample"])) == [
        ("i4", 0),
        ("i4", 1),
        ("i1", 0),
        ("i1", 1),
    ]
    expected = full.set_index(["item_id", "sample"]).loc[
        list(zip(again["item_id"], again["sample"]))
    ]
    pd.testing.assert_frame_equal(
        again, expected.reset_index()[list(TRACE_COLUMNS)].astype(TRACE_COLUMNS)
    )
    assert len(pd.read_parquet(out)) == 12  # rows of the items no longer requested stay in the file


def test_other_model_or_settings_at_same_path_are_refused(model, tok, tmp_path):
    cfg = GenerationConfig(samples=1, max_new_tokens=4, batch_size=8)
    out = tmp_path / "t.parquet"
    generate_traces(model, tok, SPEC, items(), config=cfg, out=out, checker=checker, progress=False)
    before = out.read_bytes()
    with pytest.raises(FileExistsError, match="holds traces of model 'tiny'"):
        generate_traces(
            model,
            tok,
            SPEC.model_copy(update={"name": "other"}),
            items(),
            config=cfg,
            out=out,
            checker=checker,
            progress=False,
        )
    with pytest.raises(FileExistsError, match="max_new_tokens: 4 → 5"):
        generate_traces(
            model,
            tok,
            SPEC,
            items(),
            config=GenerationConfig(samples=1, max_new_tokens=5, batch_size=8),
            out=out,
            checker=checker,
            progress=False,
        )
    with pytest.raises(
        FileExistsError, match="source: 'memory' → 'retrained/tiny'"
    ):  # same name, new weights
        generate_traces(
            model,
            tok,
            SPEC.model_copy(update={"source": "retrained/tiny"}),
            items(),
            config=cfg,
            out=out,
            checker=checker,
            progress=False,
        )
    assert out.read_bytes() == before


def test_bad_items_are_refused(model, tok, tmp_path):
    cfg = GenerationConfig(max_new_tokens=2)
    bad = items().drop(columns=["answer"])
    with pytest.raises(ValueError, match=r"lacks required column\(s\) \['answer'\]"):
        generate_traces(
            model, tok, SPEC, bad, config=cfg, out=tmp_path / "t.parquet", checker=checker
        )
    dup = pd.concat([items(2), items(2)])
    with pytest.raises(ValueError, match="duplicate item_id"):
        generate_traces(
            model, tok, SPEC, dup, config=cfg, out=tmp_path / "t.parquet", checker=checker
        )
    with pytest.raises(ValueError, match="is empty"):
        generate_traces(
            model,
            tok,
            SPEC,
            items().iloc[:0],
            config=cfg,
            out=tmp_path / "t.parquet",
            checker=checker,
        )
    with pytest.raises(ValueError, match="no single token"):
        generate_traces(
            model,
            tok,
            SPEC.model_copy(update={"think_open": "<reason>"}),
            items(),
            config=cfg,
            out=tmp_path / "t.parquet",
            checker=checker,
        )
    assert not (tmp_path / "t.parquet").exists()
