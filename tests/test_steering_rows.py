"""Per-row steering: a row steered with its own vector inside a batch of other rows and vectors
gives what a separate run of that row with ``Steer`` gives — identical greedy token ids, the
site's activations within 1e-5 (float32) at every prompt position and every decoding step — on
tiny Qwen2 and Llama models and on the model organism; ``run_steering`` (every condition as rows
of shared batches) equals separate runs of each condition, also when sampling, its batches hold
rows of several conditions, and a killed run resumes to the same table."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from tiny import tiny_model

from experiments.data.answers import exact_match
from experiments.generation import GenerationConfig, tracefile
from experiments.generation.traces import generate_traces
from experiments.models.specs import ModelSpec
from experiments.steering import random_directions, run_steering
from hooks.engines.hf import HFEngine
from hooks.engines.hf_loop import encode_prompts, generate_batch
from hooks.interventions import Steer
from hooks.recorder import Recorder

SPEC = ModelSpec(name="tiny", source="memory", template_kwargs={"think": True})
PROMPTS = ["add 1 and 2", "sub 17 from 40, carefully", "hi", "add 123 and 4567 please"]
POSITIONS = ["prompt", "prompt_end", "generated", "all"]


def checker(task):
    return exact_match


class Grab:
    """Observer keeping the recorded site activations of every forward call."""

    def __init__(self, rec, site):
        self.rec, self.site, self.steps = rec, site, []

    def on_forward(self, step, fed, active):
        self.steps.append(self.rec.activations[self.site].clone())


def steered_generation(model, prompts, steer, read_site, tokens=(1, 0)):
    """(generated ids per row, activations of every forward call) under ``steer``;
    ``tokens`` = (eos, pad) ids."""
    with Recorder(model, [read_site]) as rec, steer:
        grab = Grab(rec, read_site)
        out = generate_batch(
            model, prompts, max_new_tokens=12, eos_ids=[tokens[0]], pad_id=tokens[1], observer=grab
        )
    return out, grab.steps


def assert_rows_match(
    model, prompts, vectors, make_batch_steer, site, read_site, positions, tokens=(1, 0)
):
    """Every row of the shared batch == that row alone under ``Steer(vector)``."""
    together, acts = steered_generation(model, prompts, make_batch_steer(), read_site, tokens)
    width = acts[0].shape[1]
    for b, (p, v) in enumerate(zip(prompts, vectors)):
        alone, alone_acts = steered_generation(
            model, [p], Steer(model, site, v, positions=positions), read_site, tokens
        )
        assert together[b] == alone[0]
        # prefill: the row's real (unpadded) positions
        torch.testing.assert_close(
            acts[0][b, width - len(p) :], alone_acts[0][0], atol=1e-5, rtol=0
        )
        # every decoding step the row was still generating in its own run
        for step in range(1, len(alone_acts)):
            torch.testing.assert_close(acts[step][b], alone_acts[step][0], atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def prompt_ids(tok):
    return encode_prompts(tok, PROMPTS, template_kwargs={"think": True})


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
@pytest.mark.parametrize("positions", POSITIONS)
def test_per_row_vectors_equal_separate_runs(tok, prompt_ids, kind, positions):
    model = tiny_model(kind, vocab=len(tok), seed=1)
    torch.manual_seed(0)
    vectors = torch.randn(len(prompt_ids), 64) * 3
    vectors[2] = 0  # an unsteered row among steered ones
    assert_rows_match(
        model,
        prompt_ids,
        vectors,
        lambda: Steer(model, "resid_post.0", vectors, positions=positions),
        "resid_post.0",
        "resid_post.1",
        positions,
    )
    # the vectors did something: steering changes what at least one row writes
    plain = generate_batch(model, prompt_ids, max_new_tokens=12, eos_ids=[1], pad_id=0)
    with Steer(model, "resid_post.0", vectors, positions=positions):
        steered = generate_batch(model, prompt_ids, max_new_tokens=12, eos_ids=[1], pad_id=0)
    assert plain != steered


def test_per_row_steering_refuses_a_wrong_batch(tok, prompt_ids):
    model = tiny_model("qwen2", vocab=len(tok))
    with pytest.raises(ValueError, match="3 per-row steering vectors for a forward batch of 4"):
        with Steer(model, "resid_post.0", torch.ones(3, 64)):
            generate_batch(model, prompt_ids, max_new_tokens=2, eos_ids=[1], pad_id=0)
    with pytest.raises(ValueError, match="width 64"):
        Steer(model, "resid_post.0", torch.ones(3, 63))
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    assert hooks == 0


def items(n=6):
    return pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(n)],
            "task": "toy",
            "prompt": [f"add {k} and {k * 7 + 3}" for k in range(n)],
            "answer": "1",
        }
    )


def separate_runs(model, tok, it, directions, alphas, scale, config, out, positions="prompt"):
    """Each condition alone: ``generate_traces`` under ``Steer(alpha * scale * direction)``."""
    frames = {}
    out.mkdir(parents=True, exist_ok=True)
    for name, unit in directions.items():
        for a in alphas:
            vec = torch.as_tensor(a * scale * unit / np.linalg.norm(unit), dtype=torch.float32)
            frames[(name, a)] = generate_traces(
                model,
                tok,
                SPEC,
                it,
                config=config,
                out=out / f"{name}_{a:g}.parquet",
                checker=checker,
                progress=False,
                context=lambda v=vec: Steer(model, "resid_post.0", v, positions=positions),
            )
    return frames


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_run_steering_equals_separate_runs_of_each_condition(model, tok, tmp_path, temperature):
    it = items(6)
    dirs = {f"d{k}": v for k, v in enumerate(random_directions(64, 3, seed=4))}
    alphas = [-2.0, 2.0]
    cfg = GenerationConfig(
        samples=2, max_new_tokens=10, temperature=temperature, top_p=0.95, seed=7, batch_size=32
    )
    prefills = []  # the rows of every batch: 7 conditions x 12 rows in 3 batches, not 7
    handle = model.register_forward_pre_hook(
        lambda _m, _a, kw: (
            prefills.append(len(kw["input_ids"])) if kw["input_ids"].shape[1] > 1 else None
        ),
        with_kwargs=True,
    )
    try:
        table = run_steering(
            model,
            tok,
            SPEC,
            it,
            directions=dirs,
            site="resid_post.0",
            alphas=alphas,
            scale=3.0,
            config=cfg,
            out=tmp_path / "together",
            checker=checker,
            progress=False,
        )
    finally:
        handle.remove()
    assert prefills == [32, 32, 20]
    alone = separate_runs(model, tok, it, dirs, [0.0, *alphas], 3.0, cfg, tmp_path / "alone")
    cols = ["item_id", "sample", "reasoning_tokens", "finished_thinking", "correct"]
    texts = {}
    for (name, a), frame in alone.items():
        got = table[(table["direction"] == name) & (table["alpha"] == a)].reset_index(drop=True)
        pd.testing.assert_frame_equal(got[cols], frame[cols].astype(got[cols].dtypes))
        folder = "_unsteered" if a == 0 else name
        run = pd.read_parquet(tmp_path / "together" / "runs" / folder / f"alpha={a:g}.parquet")
        texts[(name, a)] = dict(zip(zip(run["item_id"], run["sample"]), run["text"]))
        assert texts[(name, a)] == dict(zip(zip(frame["item_id"], frame["sample"]), frame["text"]))
    # the conditions differ: steering changed what the model wrote
    distinct = {tuple(sorted(t.items())) for t in texts.values()}
    assert len(distinct) == len(texts) - len(dirs) + 1  # alpha 0 is one run under every name


def test_killed_run_resumes_to_the_uninterrupted_table(model, tok, tmp_path):
    it = items(5)
    kw = dict(
        directions={f"d{k}": v for k, v in enumerate(random_directions(64, 2, seed=8))},
        site="resid_post.0",
        alphas=[-3.0, 3.0],
        scale=2.0,
        config=GenerationConfig(
            samples=2, max_new_tokens=8, temperature=1.0, top_p=0.95, seed=1, batch_size=4
        ),
        checker=checker,
        progress=False,
    )
    whole = run_steering(model, tok, SPEC, it, out=tmp_path / "whole", **kw)
    prefills = {"n": 0}

    def kill(_module, args, kwargs):  # killed at the 8th of 13 batches
        if kwargs["input_ids"].shape[1] > 1:
            prefills["n"] += 1
            if prefills["n"] == 8:
                raise KeyboardInterrupt

    handle = model.register_forward_pre_hook(kill, with_kwargs=True)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_steering(model, tok, SPEC, it, out=tmp_path / "killed", **kw)
    finally:
        handle.remove()
    shared = tmp_path / "killed" / "runs" / "_shared.parquet"
    assert len(tracefile.read_traces(shared)) == 7 * 4  # the batches finished before the kill
    resumed = run_steering(model, tok, SPEC, it, out=tmp_path / "killed", **kw)
    pd.testing.assert_frame_equal(resumed, whole)
    # a rerun with another batch size (speed only) finds every condition complete
    again = run_steering(
        model,
        tok,
        SPEC,
        it,
        out=tmp_path / "killed",
        **kw | dict(config=replace(kw["config"], batch_size=3)),
    )
    pd.testing.assert_frame_equal(again, whole)


@pytest.mark.slow
def test_organism_rows_of_mixed_conditions_equal_separate_runs(data_dir):
    """The teacher: greedy tokens identical and activations within 1e-5, per row."""
    from experiments.data import load_items
    from experiments.models.loading import load_model
    from experiments.models.specs import get_spec

    spec = get_spec("organism-teacher")
    model, tok = load_model(spec, device="cpu")
    it = load_items("binary", data_dir).iloc[::50].head(6)
    ids = encode_prompts(
        tok,
        it["prompt"].tolist(),
        chat_template=spec.chat_template,
        system_prompt=spec.system_prompt,
        template_kwargs=spec.template_kwargs,
    )
    torch.manual_seed(3)
    vectors = torch.randn(len(ids), model.config.hidden_size) * 4
    assert_rows_match(
        model,
        ids,
        vectors,
        lambda: Steer(model, "resid_post.1", vectors, positions="prompt"),
        "resid_post.1",
        "resid_post.2",
        "prompt",
        tokens=(tok.eos_token_id, tok.pad_token_id),
    )


def test_steering_engine_runs_only_its_own_rows(tok, prompt_ids):
    """Each request is looked up by the seed generate_traces gave it: its sampling seed is
    swapped for its (item, sample)'s and its row steered with its condition's vector."""
    from experiments.steering.engine import SteeringEngine
    from hooks.engines.base import Decoding, Request

    model = tiny_model("qwen2", vocab=len(tok), seed=3)
    vector = np.full(64, 2.0)
    engine = SteeringEngine(
        model, 0, site="resid_post.0", positions="prompt", rows={11: (5, vector), 12: (5, None)}
    )
    decoding = Decoding(1.0, 1.0, 0, 0.0, (1,))
    p = tuple(prompt_ids[1])
    steered, plain = engine.generate([Request(p, 11, 8), Request(p, 12, 8)], decoding)
    # the same sampling seed (5) in both rows: they differ only by the steering vector
    with Steer(model, "resid_post.0", torch.as_tensor(vector, dtype=torch.float32)):
        alone = HFEngine(model, 0).generate([Request(p, 5, 8)], decoding)[0]
    assert steered == alone
    assert plain == HFEngine(model, 0).generate([Request(p, 5, 8)], decoding)[0]
    assert steered != plain
    with pytest.raises(ValueError, match="of no steering condition"):
        engine.generate([Request(p, 99, 8)], decoding)
