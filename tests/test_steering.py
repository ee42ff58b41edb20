"""Steering experiment on a tiny random model: alpha = 0 is the unsteered generation, hooks come
off, steering changes generation, conditions are guarded on resume, bad input fails clearly; CLI."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from experiments.contracts import TRACE_COLUMNS
from experiments.data.answers import exact_match
from experiments.generation import GenerationConfig
from experiments.generation.traces import generate_traces
from experiments.models.specs import ModelSpec
from experiments.steering import (
    injected_norm,
    prompt_end_activations,
    random_directions,
    run_steering,
)
from hooks.interventions import Steer

SITE = "resid_post.1"
SPEC = ModelSpec(name="tiny", source="memory", template_kwargs={"think": True})
CFG = GenerationConfig(
    samples=2, max_new_tokens=10, temperature=1.0, top_p=0.95, seed=3, batch_size=4
)


def items(n=5):
    return pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(n)],
            "task": "toy",
            "prompt": [f"add {k} and {k * 7}" for k in range(n)],
            "answer": "1",
        }
    )


def checker(task):
    return exact_match


def hook_count(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_alpha_zero_equals_generation_without_intervention(model, tok, tmp_path):
    plain = generate_traces(
        model,
        tok,
        SPEC,
        items(),
        config=CFG,
        out=tmp_path / "plain.parquet",
        checker=checker,
        progress=False,
    )
    zero = generate_traces(
        model,
        tok,
        SPEC,
        items(),
        config=CFG,
        out=tmp_path / "zero.parquet",
        checker=checker,
        progress=False,
        context=lambda: Steer(model, SITE, torch.zeros(64), positions="all"),
    )
    pd.testing.assert_frame_equal(plain, zero)
    dirs = {"d": random_directions(64, 1, seed=1)[0]}
    table = run_steering(
        model,
        tok,
        SPEC,
        items(),
        directions=dirs,
        site=SITE,
        alphas=[1.0],
        scale=3.0,
        config=CFG,
        out=tmp_path / "steer",
        checker=checker,
        progress=False,
    )
    at0 = table[table["alpha"] == 0].reset_index(drop=True)
    cols = ["item_id", "sample", "reasoning_tokens", "finished_thinking", "correct"]
    pd.testing.assert_frame_equal(at0[cols], plain[cols].astype(at0[cols].dtypes))


def test_steering_changes_generation_and_shares_the_unsteered_run(model, tok, tmp_path):
    dirs = {"a": random_directions(64, 2, seed=0)[0], "b": random_directions(64, 2, seed=0)[1]}
    before = hook_count(model)
    cfg = replace(CFG, samples=1, max_new_tokens=6)
    table = run_steering(
        model,
        tok,
        SPEC,
        items(4),
        directions=dirs,
        site=SITE,
        alphas=[-50, 50],
        scale=2.0,
        config=cfg,
        out=tmp_path,
        checker=checker,
        progress=False,
    )
    assert hook_count(model) == before == 0
    assert len(table) == 2 * 3 * 4
    assert not table.duplicated(["direction", "alpha", "item_id", "sample"]).any()
    # the alpha = 0 generation is run once and shared: one unsteered file, identical rows per direction
    assert sorted(p.parent.name for p in tmp_path.glob("runs/*/*.parquet")).count("_unsteered") == 1
    zero = [
        table[(table["direction"] == d) & (table["alpha"] == 0)]
        .drop(columns="direction")
        .reset_index(drop=True)
        for d in dirs
    ]
    pd.testing.assert_frame_equal(*zero)
    # a strong push at the last prompt token changes what a random model writes
    text = {
        a: pd.read_parquet(tmp_path / "runs" / "a" / f"alpha={a:g}.parquet")["text"]
        for a in (-50, 50)
    }
    unsteered = pd.read_parquet(tmp_path / "runs" / "_unsteered" / "alpha=0.parquet")["text"]
    assert (text[50] != unsteered).any() and (text[-50] != text[50]).any()


def test_hooks_come_off_when_generation_raises(model, tok, tmp_path, monkeypatch):
    import hooks.accounting

    calls = {"n": 0}

    def broken(*args, **kwargs):  # fails in the steered run (the unsteered one comes first)
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("accounting failed")
        return real(*args, **kwargs)

    real = hooks.accounting.account
    monkeypatch.setattr(hooks.accounting, "account", broken)
    with pytest.raises(RuntimeError, match="accounting failed"):
        run_steering(
            model,
            tok,
            SPEC,
            items(1),
            directions={"d": np.ones(64)},
            site=SITE,
            alphas=[1],
            scale=1.0,
            config=CFG,
            out=tmp_path,
            checker=checker,
            progress=False,
        )
    assert calls["n"] == 3
    assert hook_count(model) == 0


def test_rerun_resumes_and_refuses_another_condition(model, tok, tmp_path):
    dirs = {"d": random_directions(64, 1, seed=5)[0]}
    kw = dict(
        directions=dirs,
        site=SITE,
        alphas=[2.0],
        config=CFG,
        out=tmp_path,
        checker=checker,
        progress=False,
    )
    first = run_steering(model, tok, SPEC, items(3), scale=1.5, **kw)
    again = run_steering(model, tok, SPEC, items(3), scale=1.5, **kw)
    pd.testing.assert_frame_equal(first, again)
    with pytest.raises(FileExistsError, match="another condition"):
        run_steering(model, tok, SPEC, items(3), scale=4.0, **kw)
    hotter = kw | dict(config=replace(CFG, temperature=0.5))  # the unsteered run too
    with pytest.raises(FileExistsError, match=r"_unsteered/alpha=0.parquet.*\['generation'\]"):
        run_steering(model, tok, SPEC, items(3), scale=1.5, **hotter)


def test_unsteered_run_is_shared_across_scales_and_positions(model, tok, tmp_path):
    first = run_steering(
        model,
        tok,
        SPEC,
        items(3),
        directions={"d": random_directions(64, 1, seed=5)[0]},
        site=SITE,
        alphas=[2.0],
        scale=1.5,
        config=CFG,
        out=tmp_path,
        checker=checker,
        progress=False,
    )
    unsteered = tmp_path / "runs" / "_unsteered" / "alpha=0.parquet"
    written = unsteered.stat().st_mtime_ns
    other = run_steering(
        model,
        tok,
        SPEC,
        items(3),
        directions={"e": random_directions(64, 1, seed=6)[0]},
        site=SITE,
        positions="prompt_end",
        alphas=[2.0],
        scale=4.0,
        config=CFG,
        out=tmp_path,
        checker=checker,
        progress=False,
    )
    at0 = [
        t[t["alpha"] == 0].drop(columns="direction").reset_index(drop=True) for t in (first, other)
    ]
    pd.testing.assert_frame_equal(*at0)
    assert unsteered.stat().st_mtime_ns == written  # reused, not regenerated


def test_rerun_on_fewer_items_steers_only_them(model, tok, tmp_path):
    kw = dict(
        directions={"d": random_directions(64, 1, seed=1)[0]},
        site=SITE,
        alphas=[1.0],
        scale=2.0,
        config=replace(CFG, samples=1, max_new_tokens=6),
        out=tmp_path,
        checker=checker,
        progress=False,
    )
    run_steering(model, tok, SPEC, items(4), **kw)
    table = run_steering(model, tok, SPEC, items(4).iloc[2:], **kw)  # i0, i1 held out afterwards
    assert set(table["item_id"]) == {"i2", "i3"} and len(table) == 2 * 2
    assert (
        len(pd.read_parquet(tmp_path / "runs" / "d" / "alpha=1.parquet")) == 4
    )  # the file keeps them


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(directions={"d": np.ones(63)}), "width 64"),
        (dict(directions={"d": np.zeros(64)}), "zero"),
        (dict(directions={"a/b": np.ones(64)}), "file-name-safe"),
        (dict(directions={}), "no directions"),
        (dict(positions="end"), "unknown steering positions"),
        (dict(site="resid_post.9"), "unknown site"),
        (dict(scale=0.0), "positive"),
    ],
)
def test_bad_input_is_refused(model, tok, tmp_path, bad, match):
    kw = (
        dict(
            directions={"d": np.ones(64)},
            site=SITE,
            alphas=[1],
            scale=1.0,
            config=CFG,
            out=tmp_path,
            checker=checker,
            progress=False,
        )
        | bad
    )
    with pytest.raises(ValueError, match=match):
        run_steering(model, tok, SPEC, items(2), **kw)


def test_random_directions_are_unit_and_reproducible():
    a, b, c = (
        random_directions(50, 4, seed=1),
        random_directions(50, 4, seed=1),
        random_directions(50, 4, seed=2),
    )
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_prompt_end_activations_match_the_store(model, tok, tmp_path):
    from hooks.store import ActivationStore

    it = items(5)
    traces = generate_traces(
        model,
        tok,
        SPEC,
        it,
        config=GenerationConfig(max_new_tokens=2, batch_size=5),
        out=tmp_path / "t.parquet",
        store=tmp_path / "store",
        sites=[SITE],
        positions=["prompt_end"],
        checker=checker,
        progress=False,
    )
    store = ActivationStore(tmp_path / "store")
    X, index = store.load(SITE, "prompt_end")
    direct = prompt_end_activations(model, tok, SPEC, it["prompt"].tolist(), SITE, batch_size=2)
    order = [list(it["item_id"]).index(i) for i in index["item_id"]]
    np.testing.assert_allclose(direct[order], X, atol=1e-5)
    assert len(traces) == 5


def test_scale_is_the_mean_norm_over_the_injected_positions(model, tok):
    """Against HF's own hidden states of each prompt alone (no padding, no recorder):
    resid_post.0 is hidden_states[1]."""
    from hooks.engines.hf_loop import encode_prompts

    prompts = items(5)["prompt"].tolist()
    texts = ["<think>\nab", "c d", "", "xyz", "1"]
    ids = encode_prompts(tok, prompts, template_kwargs={"think": True})
    per_token = {"prompt": [], "prompt_end": [], "generated": [], "all": []}
    for p, text in zip(ids, texts):
        cont = tok.encode(text, add_special_tokens=False)
        with torch.no_grad():
            h = model(torch.tensor([p + cont]), output_hidden_states=True).hidden_states[1][0]
        norms = h.double().norm(dim=-1).numpy()
        per_token["prompt"] += list(norms[: len(p)])
        per_token["prompt_end"].append(norms[len(p) - 1])
        per_token["generated"] += list(norms[len(p) :])
        per_token["all"] += list(norms)
    for positions, values in per_token.items():
        got = injected_norm(
            model,
            tok,
            SPEC,
            prompts,
            "resid_post.0",
            positions=positions,
            continuations=texts,
            batch_size=2,
        )
        assert got == pytest.approx(float(np.mean(values)), rel=1e-6)
    # the last prompt token alone is not where a `prompt` vector is added
    assert np.mean(per_token["prompt"]) != pytest.approx(np.mean(per_token["prompt_end"]), rel=0.01)
    with pytest.raises(ValueError, match="continuation"):
        injected_norm(model, tok, SPEC, prompts, "resid_post.0", positions="generated")


def test_cli_steer_holds_out_fitted_items_and_writes_outputs(model, tok, tmp_path):
    import typer

    from experiments.cli.steer import register
    from probes.directions import save_direction

    folder = tmp_path / "tiny"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        yaml.safe_dump(
            dict(
                name="tiny",
                source=str(folder),
                dtype="float32",
                device="cpu",
                template_kwargs={"think": True},
                sampling=dict(temperature=1.0, top_p=0.95, max_new_tokens=6),
            )
        )
    )
    it = items(6).assign(human_rt_s=np.linspace(1, 3, 6))
    it.to_csv(tmp_path / "items.csv", index=False)
    save_direction(
        tmp_path / "len.safetensors",
        random_directions(64, 1, seed=9)[0],
        dict(
            model="tiny",
            site=SITE,
            position="prompt_end",
            target="reasoning_tokens",
            item_ids=["i0", "i1"],
        ),
    )
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps `steer` a named subcommand
    args = [
        "steer",
        "--model",
        str(spec),
        "--direction",
        str(tmp_path / "len.safetensors"),
        "--items",
        str(tmp_path / "items.csv"),
        "--alphas",
        "-1,0,1",
        "--n-random",
        "2",
        "--calibration-directions",
        "2",
        "--out",
        str(tmp_path / "out"),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "4 held-out items; held out 2 of 6" in res.output
    out = tmp_path / "out"
    steering = pd.read_csv(out / "steering.csv")
    assert set(steering["item_id"]) == {"i2", "i3", "i4", "i5"}
    assert set(steering["direction"]) == {"reasoning_tokens", "random0", "random1"}
    assert sorted(steering["alpha"].unique()) == [-1, 0, 1]
    # the linear range was chosen on the two fitted items; random directions only at ±alpha_max
    linear = pd.read_csv(out / "linear_range.csv")
    alpha_max = linear["alpha_max"].iloc[0]
    assert alpha_max == 1 and linear["n_items"].max() == 2
    assert set(steering.loc[steering["direction"] == "random0", "alpha"].abs()) <= {0, alpha_max}
    summary = pd.read_csv(out / "steering_summary.csv")
    assert list(summary.columns[:8]) == [
        "model",
        "direction",
        "n",
        "alpha_max",
        "slope",
        "slope_lo",
        "slope_hi",
        "p",
    ]
    assert (summary["n"] == 4).all()
    assert "linear range on 2 fitted items: alpha_max = 1" in res.output
    assert "p_random=" in res.output
    for name in (
        "dose_response.csv",
        "human_alignment.csv",
        "dose_response.png",
        "dose_response.svg",
    ):
        assert (out / name).stat().st_size > 0
    # a direction fitted on another model is refused with exit code 2
    save_direction(tmp_path / "other.safetensors", np.ones(64), dict(model="other", site=SITE))
    bad = CliRunner().invoke(
        app, [*args[:3], "--direction", str(tmp_path / "other.safetensors"), *args[5:]]
    )
    assert bad.exit_code == 2 and "fitted on model 'other'" in bad.output
    runs = pd.read_parquet(next((out / "runs").glob("*/alpha=1.parquet")))
    assert list(runs.columns) == [*TRACE_COLUMNS, "prompt_ids", "generated_ids", "finish_reason"]
