"""The vllm engine against handan's HF loop, on the shipped organism, with a real vLLM (the
community CPU build in CI: `.ci/vllm-env DIR`, then `DIR/bin/pytest -m vllm`).

- greedy decoding: `handan generate --engine vllm` writes the traces the hf engine writes (ids,
  reasoning_tokens, correct, response);
- seeded sampling: a killed and resumed vLLM run equals an uninterrupted one;
- a run's vllm path (generation, then teacher-forced capture) gives the store online HF capture
  gives, at every position.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

if os.environ.get("HANDAN_REQUIRE_VLLM"):  # .ci/run: a broken vLLM must fail, not skip
    import vllm  # noqa: F401
else:
    pytest.importorskip("vllm", reason="the vLLM tests run in the .ci/vllm-env environment")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB: plenty for the organism

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

from experiments.generation import GenerationConfig, tracefile  # noqa: E402
from experiments.generation.traces import generate_traces  # noqa: E402

COMPARED = ["item_id", "sample", "reasoning_tokens", "finished_thinking", "correct", "response"]
POSITIONS = ["prompt_end", "think_open", "think_close", "answer_end", "step_8"]


@pytest.fixture(scope="module")
def organism(tmp_path_factory):
    from experiments.models.loading import load_model
    from experiments.models.organism.task import organism_items
    from experiments.models.specs import get_spec

    spec = get_spec("organism-teacher")
    model, tok = load_model(spec, device="cpu")
    items = organism_items()
    items = items[items.task.str.startswith("binary")].groupby("task").head(12)
    folder = tmp_path_factory.mktemp("organism")
    items.to_parquet(folder / "items.parquet")
    return spec, model, tok, items.reset_index(drop=True), folder


@pytest.fixture(scope="module")
def engine(organism):
    from experiments.generation.engines import open_engine

    spec = organism[0]
    vllm_engine, _ = open_engine(spec, GenerationConfig(engine="vllm"), dtype="float32")
    with vllm_engine:
        yield vllm_engine


def hf_traces(organism, out, **settings):
    spec, model, tok, items, _ = organism
    cfg = GenerationConfig(**settings)
    return generate_traces(model, tok, spec, items, config=cfg, out=out, progress=False)


def test_cli_vllm_greedy_traces_equal_the_hf_loop(organism, tmp_path):
    spec, _, _, items, folder = organism
    out = tmp_path / "vllm.parquet"
    handan = Path(sys.executable).with_name("handan")
    cmd = [str(handan), "generate", "--model", spec.name, "--items", str(folder / "items.parquet")]
    cmd += ["--out", str(out), "--engine", "vllm", "--temperature", "0", "--max-new-tokens", "120"]
    cmd += ["--dtype", "float32", "--batch-size", "8"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    hf = hf_traces(organism, tmp_path / "hf.parquet", temperature=0.0, max_new_tokens=120)
    a, b = tracefile.read_traces(out), tracefile.read_traces(tmp_path / "hf.parquet")
    pd.testing.assert_frame_equal(a[COMPARED], b[COMPARED])
    assert [list(x) for x in a.generated_ids] == [list(x) for x in b.generated_ids]
    assert (a.finish_reason == b.finish_reason).all() and hf.finished_thinking.any()
    meta = tracefile.read_traces_meta(out)
    assert meta["engine"] == "vllm" and meta["recorded"]["engine_version"].startswith("vllm ")


def test_seeded_sampling_survives_a_kill_and_resume(organism, engine, tmp_path, monkeypatch):
    spec, _, tok, items, _ = organism
    cfg = GenerationConfig(
        engine="vllm", samples=2, temperature=0.8, top_p=0.95, max_new_tokens=100, batch_size=10
    )
    clean = generate_traces(
        engine, tok, spec, items, config=cfg, out=tmp_path / "clean.parquet", progress=False
    )
    real, calls = tracefile.append_part, {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real(*args, **kwargs)

    monkeypatch.setattr(tracefile, "append_part", dying)
    out = tmp_path / "resumed.parquet"
    with pytest.raises(KeyboardInterrupt):
        generate_traces(engine, tok, spec, items, config=cfg, out=out, progress=False)
    monkeypatch.setattr(tracefile, "append_part", real)
    assert len(tracefile.read_traces(out)) == 10
    resumed = generate_traces(
        engine,
        tok,
        spec,
        items,
        config=GenerationConfig(**{**vars(cfg), "batch_size": 7}),
        out=out,
        progress=False,
    )
    pd.testing.assert_frame_equal(clean, resumed)
    a, b = tracefile.read_traces(tmp_path / "clean.parquet"), tracefile.read_traces(out)
    b = b.set_index(["item_id", "sample"]).loc[list(zip(a.item_id, a["sample"]))].reset_index()
    assert [list(x) for x in a.generated_ids] == [list(x) for x in b.generated_ids]
    assert clean.groupby("item_id").text.nunique().max() == 2  # the two samples differ


def test_vllm_then_forced_capture_equals_online_hf_capture(organism, tmp_path):
    from experiments.generation.per_model import traces_and_store
    from hooks import ActivationStore

    spec, _, _, items, _ = organism
    sites = "resid_post.*,attn_out.1,mlp_out.2"
    traces_and_store(
        spec,
        items,
        GenerationConfig(engine="vllm", temperature=0.0, max_new_tokens=120),
        traces=tmp_path / "v.parquet",
        store=tmp_path / "forced",
        sites=sites,
        positions=POSITIONS,
        store_dtype="float32",
        device="cpu",
        progress=False,
    )
    traces_and_store(
        spec,
        items,
        GenerationConfig(temperature=0.0, max_new_tokens=120),
        traces=tmp_path / "h.parquet",
        store=tmp_path / "online",
        sites=sites,
        positions=POSITIONS,
        store_dtype="float32",
        device="cpu",
        progress=False,
    )
    forced, online = ActivationStore(tmp_path / "forced"), ActivationStore(tmp_path / "online")
    assert (
        forced.manifest["capture"]["mode"] == "forced"
        and online.manifest["capture"]["mode"] == "online"
    )
    key = ["item_id", "sample", "site", "position", "token_index"]
    pd.testing.assert_frame_equal(
        forced.index[key].sort_values(key).reset_index(drop=True),
        online.index[key].sort_values(key).reset_index(drop=True),
    )
    for site in forced.sites:
        for pos in POSITIONS:
            xf, rf = forced.load(site, pos)
            xo, ro = online.load(site, pos)
            ko = list(zip(ro.item_id, ro["sample"], ro.token_index))
            order = [ko.index(k) for k in zip(rf.item_id, rf["sample"], rf.token_index)]
            np.testing.assert_allclose(xf, xo[order], atol=1e-5, rtol=0)
