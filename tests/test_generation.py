"""Batched generation: padding invariance, parity with HF generate, deterministic resume, bad input."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from tiny import tiny_model

from experiments.contracts import TRACE_COLUMNS
from experiments.data.answers import exact_match
from experiments.generation import GenerationConfig
from experiments.generation import tracefile as gen_mod
from experiments.generation.traces import generate_traces
from experiments.models.specs import ModelSpec
from hooks.accounting import account, think_tokens
from hooks.engines.hf import HFEngine
from hooks.engines.hf_loop import RowSeeds, encode_prompts, generate_batch, sample_next

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
    kw = dict(max_new_tokens=10, eos_ids=[1], pad_id=0, temperature=1.0, top_p=0.9)
    a = generate_batch(model, ids, generator=torch.Generator().manual_seed(3), **kw)
    b = generate_batch(model, ids, generator=torch.Generator().manual_seed(3), **kw)
    c = generate_batch(model, ids, generator=torch.Generator().manual_seed(4), **kw)
    assert a == b and a != c


def test_row_seeds_make_each_row_independent_of_its_batch(model, tok):
    ids = encode_prompts(tok, PROMPTS)
    kw = dict(max_new_tokens=12, eos_ids=[1], pad_id=0, temperature=1.0, top_p=1.0)
    seeds = [11, 2**62 + 5, 7, 123456789]
    together = generate_batch(model, ids, generator=RowSeeds(seeds, "cpu"), **kw)
    for p, seed, row in zip(ids, seeds, together):
        assert generate_batch(model, [p], generator=RowSeeds([seed], "cpu"), **kw)[0] == row
    # reordered batch, same seeds per row: same rows
    order = [2, 0, 3, 1]
    shuffled = generate_batch(
        model, [ids[i] for i in order], generator=RowSeeds([seeds[i] for i in order], "cpu"), **kw
    )
    assert shuffled == [together[i] for i in order]
    other = generate_batch(model, ids, generator=RowSeeds([s + 1 for s in seeds], "cpu"), **kw)
    assert other != together


def test_row_seed_uniforms_are_uniform_and_draws_follow_the_distribution():
    from scipy import stats

    u = RowSeeds(range(20000), "cpu").uniform(step=3).numpy()
    assert 0 < u.min() and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    v = RowSeeds(range(20000), "cpu").uniform(step=4).numpy()  # the next step: independent
    assert abs(stats.spearmanr(u, v).statistic) < 0.03
    # inverse-CDF draws of one row's logits across many seeds: frequencies match softmax
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, 0.5]])
    draws = sample_next(logits.repeat(4000, 1), 1.0, 1.0, RowSeeds(range(4000), "cpu"), step=0)
    counts = np.bincount(draws.numpy(), minlength=5)
    expected = logits.double().softmax(-1)[0].numpy() * len(draws)
    assert stats.chisquare(counts, expected).pvalue > 1e-3


def test_per_row_budgets_cut_each_row_at_its_own(model, tok):
    ids = encode_prompts(tok, PROMPTS)
    full = generate_batch(model, ids, max_new_tokens=12, eos_ids=[999], pad_id=0)
    cut = generate_batch(model, ids, max_new_tokens=[3, 12, 1, 7], eos_ids=[999], pad_id=0)
    assert [len(r) for r in cut] == [3, 12, 1, 7]
    assert all(c == f[: len(c)] for c, f in zip(cut, full))
    with pytest.raises(ValueError, match="one budget >= 1 per row"):
        generate_batch(model, ids, max_new_tokens=[3, 0, 1, 1], eos_ids=[1], pad_id=0)


def run(model, tok, out, cfg, spec=SPEC, items_=None, **kw):
    return generate_traces(
        model,
        tok,
        spec,
        items() if items_ is None else items_,
        config=cfg,
        out=out,
        checker=checker,
        progress=False,
        **kw,
    )


def test_traces_table_follows_contract_and_keeps_the_token_ids(model, tok, tmp_path):
    cfg = GenerationConfig(samples=2, max_new_tokens=8, temperature=1.0, top_p=1.0, batch_size=4)
    t = run(model, tok, tmp_path / "t.parquet", cfg)
    assert len(t) == 12 and list(t["sample"][:2]) == [0, 1]
    assert (t["reasoning_tokens"] + t["answer_tokens"] <= 8).all()
    assert not (tmp_path / "t.parquet.parts").exists()  # merged into the file at the end
    arrow = pq.read_table(tmp_path / "t.parquet")  # pyarrow alone reads the ids
    assert arrow.schema.field("generated_ids").type == pa.list_(pa.int32())
    assert arrow.schema.field("prompt_ids").type == pa.list_(pa.int32())
    file = arrow.to_pandas()
    pd.testing.assert_frame_equal(t, file[list(TRACE_COLUMNS)].astype(TRACE_COLUMNS))
    prompts = dict(zip(items()["item_id"], encode_prompts(tok, items()["prompt"])))
    think = think_tokens(tok, "<think>", "</think>")
    for row in file.itertuples():
        gen = row.generated_ids.tolist()
        assert row.prompt_ids.tolist() == prompts[row.item_id]
        assert row.finish_reason == ("stop" if gen and gen[-1] == 1 else "length")
        assert row.finish_reason == "stop" or len(gen) == 8
        acc = account(row.prompt_ids, gen, think, [1], tok.decode)  # re-countable from the file
        assert (acc.reasoning_tokens, acc.answer_tokens) == (
            row.reasoning_tokens,
            row.answer_tokens,
        )
        assert tok.decode([x for x in gen if x != 1]) == row.text
    # the think span never closes in a random model's 8 tokens unless it emits </think>
    opened = t["text"].str.contains("<think>")
    assert (~t.loc[~opened, "finished_thinking"]).sum() == 0


@pytest.mark.slow
def test_batch_size_and_shards_do_not_change_what_is_sampled(model, tok, tmp_path):
    from experiments.generation.shards import shard_of

    cfg = GenerationConfig(samples=2, max_new_tokens=10, temperature=1.0, top_p=0.9, seed=5)
    one = run(model, tok, tmp_path / "a.parquet", cfg)
    other = run(
        model, tok, tmp_path / "b.parquet", GenerationConfig(**{**vars(cfg), "batch_size": 5})
    )
    pd.testing.assert_frame_equal(one, other)
    parts = [run(model, tok, tmp_path / f"s{i}.parquet", cfg, shard=(i, 3)) for i in (1, 2, 3)]
    for i, part in zip((1, 2, 3), parts):
        assert {shard_of(x, 3) for x in part.item_id} <= {i}
    union = (
        pd.concat(parts)
        .set_index(["item_id", "sample"])
        .loc[list(zip(one["item_id"], one["sample"]))]
    )
    pd.testing.assert_frame_equal(one, union.reset_index()[list(TRACE_COLUMNS)])
    seeded = run(model, tok, tmp_path / "c.parquet", GenerationConfig(**{**vars(cfg), "seed": 6}))
    assert not seeded["text"].equals(one["text"])
    # handan merge: the shards' files become the unsharded run's file
    from experiments.generation.merge import merge_outputs

    shards = [tmp_path / f"s{i}.parquet" for i in (1, 2, 3)]
    with pytest.raises(ValueError, match=r"missing \[2\]"):
        merge_outputs([shards[0], shards[2]], tmp_path / "m.parquet")
    with pytest.raises(FileExistsError, match="seed: 5 vs 6"):
        merge_outputs([shards[0], tmp_path / "c.parquet"], tmp_path / "m.parquet")
    merge_outputs(shards, tmp_path / "m.parquet")
    merged = gen_mod.read_traces(tmp_path / "m.parquet").set_index(["item_id", "sample"])
    pd.testing.assert_frame_equal(
        merged.loc[list(zip(one["item_id"], one["sample"]))].reset_index()[list(TRACE_COLUMNS)],
        one,
    )
    assert gen_mod.read_traces_meta(tmp_path / "m.parquet")["shard"] is None


def test_resume_after_kill_equals_clean_run(model, tok, tmp_path, monkeypatch):
    cfg = GenerationConfig(
        samples=2, max_new_tokens=6, temperature=1.0, top_p=0.95, batch_size=4, seed=7
    )
    clean = run(model, tok, tmp_path / "clean.parquet", cfg)
    real, calls = gen_mod.append_part, {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real(*args, **kwargs)

    monkeypatch.setattr(gen_mod, "append_part", dying)
    out = tmp_path / "r.parquet"
    with pytest.raises(KeyboardInterrupt):
        run(model, tok, out, cfg)
    assert not out.exists() and len(list((tmp_path / "r.parquet.parts").iterdir())) == 1
    assert len(gen_mod.read_traces(out)) == 4  # the first batch is kept, in its part
    monkeypatch.setattr(gen_mod, "append_part", real)
    resumed = run(model, tok, out, cfg.__class__(**{**vars(cfg), "batch_size": 3}))
    pd.testing.assert_frame_equal(clean, resumed)
    assert not (tmp_path / "r.parquet.parts").exists()
    file = pd.read_parquet(out)
    assert len(file) == 12 and file[["item_id", "sample"]].duplicated().sum() == 0


def test_a_context_cap_cuts_the_budget_and_a_full_prompt_is_refused(model, tok, tmp_path):
    short = items().iloc[[0, 3]]  # prompts "1+1=" and "x": 4 and 1 characters
    plen = {i: len(p) for i, p in zip(short.item_id, encode_prompts(tok, short.prompt))}
    context = max(plen.values()) + 4
    cfg = GenerationConfig(max_new_tokens=50, temperature=1.0, top_p=1.0, max_model_len=context)
    t = run(model, tok, tmp_path / "t.parquet", cfg, items_=short)
    file = pd.read_parquet(tmp_path / "t.parquet").set_index("item_id")
    assert len(set(plen.values())) == 2  # so the two budgets differ
    for iid, n in plen.items():
        gen = file.loc[iid, "generated_ids"]
        assert len(gen) <= context - n
        assert file.loc[iid, "finish_reason"] == "stop" or len(gen) == context - n
    assert len(t) == 2
    tight = GenerationConfig(max_new_tokens=50, max_model_len=min(plen.values()) + 2)
    with pytest.raises(ValueError, match=r"items \['i0'\] have prompts of max_model_len"):
        run(model, tok, tmp_path / "u.parquet", tight, items_=short)


class _RenamedEngine(HFEngine):
    """The hf loop under another engine's name (a stand-in: vLLM is tested in its own venv)."""

    name = "vllm"
    captures = False


def test_an_engine_other_than_the_settings_or_the_file_is_refused(model, tok, tmp_path):
    out = tmp_path / "t.parquet"
    cfg = GenerationConfig(max_new_tokens=4, temperature=0.0)
    run(model, tok, out, cfg)
    vllm_cfg = GenerationConfig(max_new_tokens=4, temperature=0.0, engine="vllm")
    with pytest.raises(FileExistsError, match="engine: 'hf' → 'vllm'"):
        run(_RenamedEngine(model), tok, out, vllm_cfg)
    with pytest.raises(ValueError, match="settings say engine 'hf'"):
        run(_RenamedEngine(model), tok, tmp_path / "u.parquet", cfg)
    with pytest.raises(ValueError, match="cannot capture"):
        run(_RenamedEngine(model), tok, tmp_path / "v.parquet", vllm_cfg, store=tmp_path / "s")
    meta = gen_mod.read_traces_meta(out)
    assert meta["engine"] == "hf" and meta["recorded"]["engine_version"].startswith("transformers")


def test_a_resume_with_other_prompt_ids_is_refused_naming_the_item(model, tok, tmp_path):
    from tiny import char_tokenizer

    out = tmp_path / "t.parquet"
    cfg = GenerationConfig(max_new_tokens=3, temperature=0.0)
    run(model, tok, out, cfg, items_=items(2))
    changed = char_tokenizer()
    changed.chat_template = "{% for m in messages %}[{{ m['content'] }}]{% endfor %}"
    with pytest.raises(FileExistsError, match="other prompt token ids: item 'i0'"):
        run(model, changed, out, cfg, items_=items(3))


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
