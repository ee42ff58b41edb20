"""Teacher-forced capture over stored token ids equals online capture while generating, at every
position, on tiny Qwen2 / Llama models and the shipped organism (fp32, 1e-5)."""

import numpy as np
import pandas as pd
import pytest
import torch
from tiny import char_tokenizer, tiny_model

from experiments.data.answers import exact_match
from experiments.generation import GenerationConfig
from experiments.generation.forced import record_from_traces
from experiments.generation.traces import generate_traces
from experiments.models.specs import ModelSpec
from hooks import ActivationStore, Recorder
from hooks.accounting import think_tokens
from hooks.capture import landmarks

SITES = ["resid_pre.0", "resid_post.0", "attn_out.1", "mlp_out.1", "resid_post.1"]
POSITIONS = ["prompt_end", "think_open", "think_close", "answer_end", "step_3"]


def checker(task):
    return exact_match


def items(n=6):
    prompts = ["a", "bb b", "ccc cc c", "1+1=", "what?", "x y z w"]
    return pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(n)],
            "task": "toy",
            "prompt": prompts[:n],
            "answer": "x",
        }
    )


def assert_stores_equal(a: ActivationStore, b: ActivationStore, sites, positions, atol=1e-5):
    """Same index rows (absent ones included) and vectors within ``atol``, per site/position."""
    key = ["item_id", "sample", "site", "position", "token_index"]
    ia = a.index[key].sort_values(key).reset_index(drop=True)
    ib = b.index[key].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(ia, ib)
    n = 0
    for site in sites:
        for pos in positions:
            xa, ra = a.load(site, pos)
            xb, rb = b.load(site, pos)
            ka = list(zip(ra.item_id, ra["sample"], ra.token_index))
            kb = list(zip(rb.item_id, rb["sample"], rb.token_index))
            order = [kb.index(k) for k in ka]
            np.testing.assert_allclose(xa, xb[order], atol=atol, rtol=0)
            n += len(xa)
    return n


def _chatty(kind):
    """A tiny model made likely to write </think> and EOS, so every position occurs."""
    tok = char_tokenizer()
    model = tiny_model(kind, vocab=len(tok))
    bias = torch.zeros(len(tok))
    bias[[2, 3]], bias[1] = 3.5, 2.0  # <think>, </think> and EOS each ~10-20% likely
    model.lm_head.register_forward_hook(lambda module, args, logits: logits + bias)  # logits only
    return model, tok


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
@pytest.mark.parametrize("think_in_prompt", [True, False])
def test_forced_equals_online_capture_at_every_position(tmp_path, kind, think_in_prompt):
    model, tok = _chatty(kind)
    spec = ModelSpec(name="tiny", source="memory", template_kwargs={"think": think_in_prompt})
    cfg = GenerationConfig(samples=3, max_new_tokens=12, temperature=1.0, top_p=1.0, batch_size=4)
    traces = generate_traces(
        model,
        tok,
        spec,
        items(),
        config=cfg,
        out=tmp_path / "t.parquet",
        store=tmp_path / "online",
        sites=SITES,
        positions=POSITIONS,
        checker=checker,
        progress=False,
    )
    forced = record_from_traces(
        model,
        tok,
        spec,
        tmp_path / "t.parquet",
        store=tmp_path / "forced",
        sites=SITES,
        positions=POSITIONS,
        batch_size=5,
        progress=False,
    )
    online = ActivationStore(tmp_path / "online")
    n = assert_stores_equal(online, forced, SITES, POSITIONS)
    assert n > 0
    idx = forced.index
    present = idx[idx.token_index >= 0].position.value_counts()
    for pos in POSITIONS:  # every position occurs somewhere, so each is compared
        assert present.get(pos, 0) > 0, pos
    assert forced.manifest["capture"] == dict(
        mode="forced", traces_model="tiny", reads="token ids", prompts="traces"
    )
    assert online.manifest["capture"] == dict(mode="online")
    assert traces.finished_thinking.any()
    # a rerun skips what is complete; other settings are refused naming them
    again = record_from_traces(
        model,
        tok,
        spec,
        tmp_path / "t.parquet",
        store=tmp_path / "forced",
        sites=SITES,
        positions=POSITIONS,
        progress=False,
    )
    assert again.index.equals(forced.index)
    with pytest.raises(FileExistsError, match="positions"):
        record_from_traces(
            model,
            tok,
            spec,
            tmp_path / "t.parquet",
            store=tmp_path / "forced",
            sites=SITES,
            positions=["prompt_end"],
            progress=False,
        )


def test_landmarks_by_hand():
    think = think_tokens(char_tokenizer(), "<think>", "</think>")
    prompt = [10, 11, 2]  # ends inside an open span (opener at index 2)
    gen = [20, 21, 3, 22, 1]  # reasoning, </think> at generated index 2, answer, EOS
    marks = landmarks(prompt, gen, think, [1], POSITIONS)
    assert marks == [
        ("prompt_end", 2),
        ("think_open", 2),
        ("think_close", 5),
        ("answer_end", 6),
        ("step_3", 5),
    ]
    # no opener in the prompt: the first generated opener; a closer before it does not count;
    # cut by the budget: no answer_end; step_2 covers generated indices 1 and 3
    marks = landmarks(
        [10, 11], [3, 2, 20, 3], think, [1], ["think_open", "think_close", "answer_end", "step_2"]
    )
    assert marks == [
        ("think_open", 3),
        ("think_close", 5),
        ("answer_end", -1),
        ("step_2", 3),
        ("step_2", 5),
    ]
    assert landmarks([10], [1], think, [1], ["answer_end", "step_1"]) == [
        ("answer_end", 0),
        ("step_1", -1),
    ]


@pytest.mark.slow
def test_forced_equals_online_on_the_organism(tmp_path):
    from experiments.models.loading import load_model
    from experiments.models.organism.task import organism_items
    from experiments.models.specs import get_spec

    spec = get_spec("organism-teacher")
    model, tok = load_model(spec, device="cpu")
    some = organism_items()
    some = some[some.task.str.startswith("binary")].groupby("task").head(4).reset_index(drop=True)
    sites = [f"resid_post.{k}" for k in range(4)] + ["attn_out.2", "mlp_out.3"]
    cfg = GenerationConfig(samples=2, max_new_tokens=60, temperature=1.0, top_p=1.0, batch_size=5)
    traces = generate_traces(
        model,
        tok,
        spec,
        some,
        config=cfg,
        out=tmp_path / "t.parquet",
        store=tmp_path / "online",
        sites=sites,
        positions=POSITIONS,
        progress=False,
    )
    assert traces.finished_thinking.any()
    forced = record_from_traces(
        model,
        tok,
        spec,
        tmp_path / "t.parquet",
        store=tmp_path / "forced",
        sites=sites,
        positions=POSITIONS,
        batch_size=3,
        progress=False,
    )
    assert assert_stores_equal(ActivationStore(tmp_path / "online"), forced, sites, POSITIONS) > 0
    present = set(forced.index.loc[forced.index.token_index >= 0, "position"])
    assert {"prompt_end", "think_close", "answer_end", "step_3"} <= present


def test_another_model_reads_the_traces(tmp_path):
    """B reads A's trace: with A's vocabulary, A's very ids; with another, A's text re-encoded
    after B's own prompt (items needed). Each vector equals B's plain forward over those ids."""
    model_a, tok = _chatty("qwen2")
    spec_a = ModelSpec(name="a", source="memory", template_kwargs={"think": True})
    cfg = GenerationConfig(samples=2, max_new_tokens=10, temperature=1.0, top_p=1.0)
    generate_traces(
        model_a,
        tok,
        spec_a,
        items(),
        config=cfg,
        out=tmp_path / "a.parquet",
        checker=checker,
        progress=False,
    )
    file = pd.read_parquet(tmp_path / "a.parquet")
    model_b = tiny_model("llama", vocab=len(tok), seed=3)
    spec_b = spec_a.model_copy(update={"name": "b"})
    store = record_from_traces(
        model_b,
        tok,
        spec_b,
        tmp_path / "a.parquet",
        store=tmp_path / "b",
        sites=["resid_post.1"],
        positions=["think_close", "step_2"],
        progress=False,
    )
    assert store.manifest["model"] == "b" and store.manifest["capture"]["traces_model"] == "a"
    X, index = store.load("resid_post.1", "step_2")
    rows = file.set_index(["item_id", "sample"])
    for x, r in zip(X, index.itertuples()):
        row = rows.loc[(r.item_id, r.sample)]
        ids = (list(row.prompt_ids) + list(row.generated_ids))[: r.token_index + 1]
        with Recorder(model_b, ["resid_post.1"]) as rec, torch.no_grad():
            model_b(input_ids=torch.tensor([ids]))
        np.testing.assert_allclose(x, rec.activations["resid_post.1"][0, -1].numpy(), atol=1e-5)
    # another vocabulary: the text is re-encoded, so the prompts need the Items table
    other = char_tokenizer()
    other.add_tokens(["<extra>"])  # a different vocabulary, same characters
    with pytest.raises(ValueError, match="give --items"):
        record_from_traces(
            model_b,
            other,
            spec_b,
            tmp_path / "a.parquet",
            store=tmp_path / "c",
            sites=["resid_post.1"],
            progress=False,
        )
    c = record_from_traces(
        model_b,
        other,
        spec_b,
        tmp_path / "a.parquet",
        store=tmp_path / "c",
        sites=["resid_post.1"],
        positions=["answer_end"],
        items=items(),
        progress=False,
    )
    assert c.manifest["capture"]["reads"] == "re-encoded text"
    X, index = c.load("resid_post.1", "answer_end")
    from hooks.engines.hf_loop import encode_prompts

    prompts = dict(
        zip(items().item_id, encode_prompts(other, items().prompt, template_kwargs={"think": True}))
    )
    for x, r in zip(X, index.itertuples()):
        row = rows.loc[(r.item_id, r.sample)]
        ids = prompts[r.item_id] + other.encode(row.text, add_special_tokens=False)
        assert r.token_index == len(ids) - 1
        with Recorder(model_b, ["resid_post.1"]) as rec, torch.no_grad():
            model_b(input_ids=torch.tensor([ids]))
        np.testing.assert_allclose(x, rec.activations["resid_post.1"][0, -1].numpy(), atol=1e-5)
    with pytest.raises(ValueError, match=r"items \['i5'\] \(1\) of the traces are not in"):
        record_from_traces(
            model_b,
            other,
            spec_b,
            tmp_path / "a.parquet",
            store=tmp_path / "d",
            sites=["resid_post.1"],
            items=items(5),
            progress=False,
        )


@pytest.mark.slow
def test_cli_sharded_generate_merge_and_record_from_traces(tmp_path):
    """`handan generate --shard I/N` twice, `handan merge`, `handan record --from-traces`."""
    from typer.testing import CliRunner

    from experiments.cli import app
    from experiments.generation import tracefile
    from experiments.models.organism.task import organism_items

    items = organism_items()
    items = items[items.task.str.startswith("binary")].groupby("task").head(4)
    items.to_parquet(tmp_path / "items.parquet")
    run = CliRunner()
    common = ["--model", "organism-teacher", "--items", str(tmp_path / "items.parquet")]
    common += ["--out", str(tmp_path / "t.parquet"), "--max-new-tokens", "60", "--samples", "2"]
    for shard in ("1/2", "2/2"):
        result = run.invoke(app, ["generate", *common, "--shard", shard])
        assert result.exit_code == 0, result.output
    shards = [tmp_path / f"t.shard-{i}-of-2.parquet" for i in (1, 2)]
    merged = tmp_path / "merged.parquet"
    result = run.invoke(app, ["merge", *map(str, shards), "--out", str(merged)])
    assert result.exit_code == 0, result.output
    table = tracefile.read_traces(merged)
    assert sorted(table.item_id.unique()) == sorted(items.item_id) and len(table) == 2 * len(items)
    result = run.invoke(
        app,
        ["record", "--from-traces", str(merged), "--model", "organism-teacher"]
        + ["--out", str(tmp_path / "s"), "--sites", "resid_post.1,resid_post.3"]
        + ["--positions", "prompt_end,think_close,step_4"],
    )
    assert result.exit_code == 0, result.output
    store = ActivationStore(tmp_path / "s")
    assert store.completed() == set(zip(table.item_id, table["sample"].astype(int)))
    assert store.manifest["capture"]["mode"] == "forced"
    refused = run.invoke(app, ["merge", str(shards[0]), "--out", str(tmp_path / "m2.parquet")])
    assert refused.exit_code == 2 and "missing [2]" in refused.output
