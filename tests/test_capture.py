"""Capture during generation equals a clean forward over prompt + output at the same positions."""

import numpy as np
import pandas as pd
import pytest
import torch
from tiny import char_tokenizer, tiny_model

from experiments.data.answers import exact_match
from experiments.generation import GenerationConfig
from experiments.generation.traces import generate_traces
from experiments.models.specs import ModelSpec
from hooks import ActivationStore, Recorder
from hooks.capture import parse_positions
from hooks.engines.hf_loop import encode_prompts

SITES = ["resid_post.0", "resid_post.1", "mlp_out.1"]
POSITIONS = ["prompt_end", "think_open", "think_close", "answer_end", "step_3"]


def checker(task):
    return exact_match


def items():
    return pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(5)],
            "task": "toy",
            "prompt": ["a", "bb b", "ccc cc c", "1+1=", "what?"],
            "answer": "x",
        }
    )


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_captured_vectors_equal_clean_forward(tmp_path, kind):
    tok = char_tokenizer()
    model = tiny_model(kind, vocab=len(tok))
    with torch.no_grad():  # make </think> and EOS likely, so think_close and answer_end occur
        model.lm_head.weight[3] = model.lm_head.weight.mean(0) * 30
        model.lm_head.weight[1] = model.lm_head.weight.mean(0) * 25
    spec = ModelSpec(name="tiny", source="memory", template_kwargs={"think": True})
    cfg = GenerationConfig(samples=3, max_new_tokens=10, temperature=1.0, top_p=1.0, batch_size=4)
    traces = generate_traces(
        model,
        tok,
        spec,
        items(),
        config=cfg,
        out=tmp_path / "t.parquet",
        store=tmp_path / "store",
        sites=SITES,
        positions=POSITIONS,
        checker=checker,
        progress=False,
    )
    store = ActivationStore(tmp_path / "store")
    prompts = dict(
        zip(
            items()["item_id"],
            encode_prompts(tok, items()["prompt"], template_kwargs={"think": True}),
        )
    )
    seen = {"answer_end": 0, "think_close": 0}
    for site in SITES:
        for pos in POSITIONS:
            X, index = store.load(site, pos)
            assert len(X) == len(index) > 0 or pos in ("answer_end", "think_close")
            for x, row in zip(X, index.itertuples()):
                trace = traces[
                    (traces.item_id == row.item_id) & (traces["sample"] == row.sample)
                ].iloc[0]
                full = prompts[row.item_id] + tok.encode(trace.text, add_special_tokens=False)
                ids = torch.tensor([full[: row.token_index + 1]])
                with Recorder(model, [site]) as rec, torch.no_grad():
                    model(input_ids=ids)
                np.testing.assert_allclose(
                    x, rec.activations[site][0, -1].numpy(), atol=1e-4, rtol=1e-4
                )
                if pos == "answer_end":
                    seen["answer_end"] += 1
                    assert row.token_index == len(full) - 1  # the last token before EOS
                if pos == "think_open":  # the template ends "<think>\n": opener in the prompt
                    assert full[row.token_index] == tok.convert_tokens_to_ids("<think>")
                    assert row.token_index < len(prompts[row.item_id])
                if pos == "think_close":
                    seen["think_close"] += 1
                    assert full[row.token_index] == tok.convert_tokens_to_ids("</think>")
    assert seen["answer_end"] > 0 and seen["think_close"] > 0
    idx = store.index
    # one prompt_end per (item, sample, site); think_close present exactly where the span closed
    assert (
        idx[idx.position == "prompt_end"].groupby(["item_id", "sample", "site"]).size() == 1
    ).all()
    closes = idx[idx.position == "think_close"]
    assert len(closes) == 15 * len(SITES)
    assert (closes.token_index >= 0).sum() == traces.finished_thinking.sum() * len(SITES)
    steps = idx[(idx.position == "step_3") & (idx.token_index >= 0)]
    gen_len = steps.token_index - steps.item_id.map({k: len(v) for k, v in prompts.items()})
    assert set((gen_len + 1) % 3) == {0}


def test_resume_after_kill_yields_identical_store(tmp_path, monkeypatch):
    tok = char_tokenizer()
    model = tiny_model("qwen2", vocab=len(tok))
    spec = ModelSpec(name="tiny", source="memory")
    cfg = GenerationConfig(samples=2, max_new_tokens=6, temperature=1.0, top_p=1.0, batch_size=3)
    kw = dict(
        config=cfg,
        sites=SITES[:2],
        positions=["prompt_end", "step_2"],
        checker=checker,
        progress=False,
    )
    generate_traces(
        model, tok, spec, items(), out=tmp_path / "a.parquet", store=tmp_path / "a", **kw
    )
    import hooks.store as store_mod

    real, calls = store_mod.ActivationStore.append, {"n": 0}

    def dying(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(store_mod.ActivationStore, "append", dying)
    with pytest.raises(KeyboardInterrupt):
        generate_traces(
            model, tok, spec, items(), out=tmp_path / "b.parquet", store=tmp_path / "b", **kw
        )
    monkeypatch.setattr(store_mod.ActivationStore, "append", real)
    generate_traces(
        model, tok, spec, items(), out=tmp_path / "b.parquet", store=tmp_path / "b", **kw
    )
    a, b = ActivationStore(tmp_path / "a"), ActivationStore(tmp_path / "b")
    pd.testing.assert_frame_equal(a.index, b.index)  # same rows, absent ones included, same shards
    for site in SITES[:2]:
        for pos in ["prompt_end", "step_2"]:
            np.testing.assert_array_equal(a.load(site, pos)[0], b.load(site, pos)[0])
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    )


def test_bad_positions_and_sites_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="unknown capture position 'middle'"):
        parse_positions(["prompt_end", "middle"])
    tok = char_tokenizer()
    model = tiny_model("qwen2", vocab=len(tok))
    with pytest.raises(ValueError, match="resid_post.9"):
        generate_traces(
            model,
            tok,
            ModelSpec(name="t", source="memory"),
            items(),
            config=GenerationConfig(max_new_tokens=2),
            out=tmp_path / "t.parquet",
            store=tmp_path / "s",
            sites=["resid_post.9"],
            checker=checker,
            progress=False,
        )


def test_expand_sites(model):
    from hooks.sites import expand_sites

    assert expand_sites(model, "resid_post.*, mlp_out.1") == [
        "resid_post.0",
        "resid_post.1",
        "mlp_out.1",
    ]
    with pytest.raises(ValueError, match="'resid_mid.\\*' is not a site name"):
        expand_sites(model, "resid_mid.*")
    with pytest.raises(ValueError, match="'attn_z.7.\\*' matches nothing"):  # 2 layers
        expand_sites(model, "attn_z.7.*")


def _forced_close_model(tok):
    """A tiny Qwen2 that always emits ``</think>`` (id 3) and never EOS (id 1)."""
    model = tiny_model("qwen2", vocab=len(tok))
    bias = torch.zeros(len(tok))
    bias[3], bias[1] = 1e4, -1e4
    model.lm_head.register_forward_hook(lambda module, args, logits: logits + bias)  # logits only
    return model


def test_the_last_budget_token_is_captured(tmp_path):
    tok = char_tokenizer()
    model = _forced_close_model(tok)
    spec = ModelSpec(name="t", source="memory", template_kwargs={"think": True})
    traces = generate_traces(
        model,
        tok,
        spec,
        items(),
        config=GenerationConfig(max_new_tokens=1, temperature=0.0),
        out=tmp_path / "t.parquet",
        store=tmp_path / "s",
        sites=["resid_post.1"],
        positions=["think_close", "step_1"],
        checker=checker,
        progress=False,
    )
    assert traces.finished_thinking.all()  # the one budget token is </think>
    prompts = encode_prompts(tok, items()["prompt"], template_kwargs={"think": True})
    store = ActivationStore(tmp_path / "s")
    for pos in ("think_close", "step_1"):
        X, index = store.load("resid_post.1", pos)
        assert index.item_id.tolist() == items().item_id.tolist()  # present for every trace
        for x, row, p in zip(X, index.itertuples(), prompts):
            assert row.token_index == len(p)  # the first (and last) generated token
            with Recorder(model, ["resid_post.1"]) as rec, torch.no_grad():
                model(input_ids=torch.tensor([p + [3]]))
            np.testing.assert_allclose(
                x, rec.activations["resid_post.1"][0, -1].numpy(), atol=1e-4, rtol=1e-4
            )


def test_a_batch_where_no_position_occurs_is_stored_as_absent(tmp_path):
    tok = char_tokenizer()
    model = _forced_close_model(tok)  # never EOS, so answer_end never occurs
    generate_traces(
        model,
        tok,
        ModelSpec(name="t", source="memory"),
        items(),
        config=GenerationConfig(max_new_tokens=3, temperature=0.0),
        out=tmp_path / "t.parquet",
        store=tmp_path / "s",
        sites=["resid_post.0"],
        positions=["answer_end"],
        checker=checker,
        progress=False,
    )
    index = ActivationStore(tmp_path / "s").index
    assert len(index) == 5 and (index.token_index == -1).all() and (index.shard == "").all()


def test_store_settings_are_checked_before_the_store_is_written(tmp_path):
    tok = char_tokenizer()
    model = tiny_model("qwen2", vocab=len(tok))
    spec = ModelSpec(name="t", source="memory")
    kw = dict(
        config=GenerationConfig(max_new_tokens=2, temperature=0.0),
        out=tmp_path / "t.parquet",
        store=tmp_path / "s",
        checker=checker,
        progress=False,
    )
    with pytest.raises(ValueError, match="resid_post.9"):
        generate_traces(model, tok, spec, items(), sites=["resid_post.9"], **kw)
    with pytest.raises(ValueError, match="unsupported store dtype 'int8'"):
        generate_traces(model, tok, spec, items(), sites=["resid_post.0"], store_dtype="int8", **kw)
    assert not (tmp_path / "s").exists() and not (tmp_path / "t.parquet").exists()
    # dtype aliases and repeated sites or positions are normalised, so a rerun written either way resumes
    generate_traces(
        model,
        tok,
        spec,
        items(),
        sites=["resid_post.0", "resid_post.0"],
        positions=["prompt_end", "prompt_end"],
        store_dtype="bf16",
        **kw,
    )
    store = ActivationStore(tmp_path / "s")
    assert (
        store.dtype == "bfloat16"
        and store.sites == ["resid_post.0"]
        and store.positions == ["prompt_end"]
    )
    generate_traces(model, tok, spec, items(), sites=["resid_post.0"], store_dtype="bfloat16", **kw)
    assert len(ActivationStore(tmp_path / "s").index) == 5
    with pytest.raises(ValueError, match="repeat a label"):
        parse_positions(["step_2", "step_2"])
