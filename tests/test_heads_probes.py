"""The head sweep finds a planted head (max-T over every layer x head), and the teacher - student
best-head contrast sees the stronger model's planted head, on stores of d_head-wide head keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from hooks.store import ActivationStore
from probes.crossfit import best_site
from probes.heads import compare_heads, head_rows
from probes.layer_sweep import head_of, layer_of
from probes.store_sweep import crossfit_store, sweep_store

N_ITEMS, D_HEAD = 60, 6


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    ids = [f"i{k}" for k in range(N_ITEMS)]
    items = pd.DataFrame(
        {
            "item_id": ids,
            "task": ["add", "mul"] * (N_ITEMS // 2),
            "prompt": "q",
            "answer": "1",
            "human_rt_s": np.exp(rng.normal(size=N_ITEMS)),
        }
    )
    traces = pd.DataFrame(
        {
            "model": np.repeat(["teacher", "student"], N_ITEMS),
            "item_id": ids * 2,
            "task": "add",
            "sample": 0,
            "prompt_tokens": [10 + k % 7 for k in range(N_ITEMS)] * 2,
            "reasoning_tokens": rng.integers(20, 200, 2 * N_ITEMS),
            "answer_tokens": 3,
            "finished_thinking": True,
            "response": "1",
            "correct": True,
            "text": "t",
        }
    )
    return items, traces


def _store(tmp_path, items, model, layers, heads, planted, strength):
    """A store of ``attn_z.{L}.{H}`` keys; head ``planted`` carries log human RT on one unit."""
    rng = np.random.default_rng(len(model))
    sites = [f"attn_z.{layer}.{h}" for layer in range(layers) for h in range(heads)]
    store = ActivationStore.create_or_open(
        tmp_path / model,
        {
            "model": model,
            "config_hash": "x",
            "sites": sites,
            "positions": ["prompt_end"],
            "dtype": "float32",
            "d_model": D_HEAD * heads,
            "n_layers": layers,
            "widths": dict.fromkeys(sites, D_HEAD),
        },
    )
    signal = np.log(items["human_rt_s"].to_numpy())
    vectors = {}
    for site in sites:
        x = rng.normal(size=(N_ITEMS, D_HEAD))
        if site == planted:
            x[:, 0] += strength * signal
        vectors[site] = x.astype(np.float32)
    index = pd.DataFrame(
        [
            dict(model=model, item_id=i, sample=0, site=s, position="prompt_end", token_index=5)
            for s in sites
            for i in items["item_id"]
        ]
    )
    store.append(index, vectors)
    store.close()
    return ActivationStore(store.path)


def test_head_sweep_finds_the_planted_head(tmp_path, tables):
    items, traces = tables
    store = _store(tmp_path, items, "teacher", 3, 4, "attn_z.1.2", 2.0)
    fit = dict(model="teacher", cv=3, seed=0)
    table, _ = sweep_store(
        store, items, traces, "human_rt", sites=["attn_z.*"], n_permutations=39, n_boot=100, **fit
    )
    best = head_rows(table).iloc[0]
    assert (best.site, best.layer, best["head"]) == ("attn_z.1.2", 1, 2)
    assert best.score > 0.5 and best.p_fwe == pytest.approx(1 / 40)  # max-T over 12 heads
    others = head_rows(table).iloc[1:]
    assert len(others) == 11 and (others.p_fwe > 0.05).mean() > 0.8
    assert layer_of("attn_z.1.2") == 1 and head_of("attn_z.1.2") == 2
    assert np.isnan(head_of("resid_post.3"))
    half = crossfit_store(store, items, traces, "human_rt", n_splits=4, **fit)
    picked = best_site(half, table)
    assert picked["site"] == "attn_z.1.2" and picked["score_lo"] > 0.3
    with pytest.raises(ValueError, match="match none"):
        sweep_store(store, items, traces, "human_rt", sites=["mlp_out.*"], **fit)


def test_best_head_contrast_sees_the_stronger_head(tmp_path, tables):
    """Teacher: 3 layers x 4 heads, strong head 2.1; student: 2 layers x 3 heads, weak head 0.0."""
    items, traces = tables
    teacher = _store(tmp_path, items, "teacher", 3, 4, "attn_z.2.1", 2.0)
    student = _store(tmp_path, items, "student", 2, 3, "attn_z.0.0", 0.8)
    fit = dict(cv=3, seed=0, n_splits=4)
    halves = [
        crossfit_store(s, items, traces, "human_rt", model=m, **fit)
        for s, m in ((teacher, "teacher"), (student, "student"))
    ]
    table = compare_heads(*halves)
    primary = table[table.comparison == "best_head"].iloc[0]
    assert primary.endpoint == "primary" and primary.site_a == "attn_z.2.1"
    assert primary.diff_lo > 0 and primary.p < 0.05
    depth = table[table.comparison == "depth"]
    # teacher depths 0 / .5 / 1, student 0 / 1; ties go to the shallower layer:
    # 0.25 -> layers (0, 0), 0.5 -> (1, 0), 0.75 -> (1, 1)
    assert list(depth.depth) == [0.25, 0.5, 0.75]
    pairs = [(layer_of(a), layer_of(b)) for a, b in zip(depth.site_a, depth.site_b)]
    assert pairs == [(0, 0), (1, 0), (1, 1)]
    assert depth.site_b.iloc[0] == "attn_z.0.0"  # the student's planted head, picked in layer 0
    assert (depth.endpoint == "secondary").all()


def test_report_names_the_best_heads_and_the_contrast(tmp_path, tables):
    from experiments.pipeline.head_stage import (
        HEADS_BEST_CSV,
        HEADS_COMPARE_CSV,
        HEADS_SWEEP_CSV,
    )
    from experiments.pipeline.layout import RunLayout
    from experiments.pipeline.report.heads import head_section
    from probes.multiplicity import holm_by

    items, traces = tables
    run = RunLayout(tmp_path / "run")
    run.probes.mkdir(parents=True)
    fit = dict(cv=3, seed=0)
    sweeps, best, halves = [], [], []
    for model, layers, heads, planted, strength in (
        ("teacher", 3, 4, "attn_z.2.1", 2.0),
        ("student", 2, 3, "attn_z.0.0", 0.8),
    ):
        store = _store(tmp_path, items, model, layers, heads, planted, strength)
        table, _ = sweep_store(
            store, items, traces, "human_rt", model=model, n_permutations=19, n_boot=50, **fit
        )
        half = crossfit_store(store, items, traces, "human_rt", model=model, n_splits=4, **fit)
        sweeps.append(table)
        halves.append(half)
        best.append(dict(model=model, target="human_rt", n_heads=layers * heads))
        best[-1] |= best_site(half, table)
    head_rows(pd.concat(sweeps)).to_csv(run.probes / HEADS_SWEEP_CSV, index=False)
    pd.DataFrame(best).to_csv(run.probes / HEADS_BEST_CSV, index=False)
    cmp_ = compare_heads(*halves).assign(model_a="teacher", model_b="student", target="human_rt")
    cmp_["p_holm"] = holm_by(cmp_, "endpoint")
    cmp_.to_csv(run.probes / HEADS_COMPARE_CSV, index=False)
    lines, summary = head_section(run)
    text = "\n".join(lines)
    assert "| teacher | human_rt | 12 | attn_z.2.1 (100%)" in text
    assert "teacher's best head decodes it more than student's" in text
    assert "not matched one to one" in text
    assert summary["teacher"]["human_rt"]["site"] == "attn_z.2.1"
    assert summary["contrasts"][0]["comparison"] == "best_head"


def test_a_model_whose_heads_cannot_be_recorded_is_skipped_with_the_reason(tmp_path, monkeypatch):
    from experiments.errors import InputError
    from experiments.pipeline import head_stage
    from experiments.pipeline.config import RunConfig
    from experiments.pipeline.layout import RunLayout
    from experiments.pipeline.report.heads import head_section

    def refuse(cfg, spec, run, progress):
        head_stage.head_store(run, spec).mkdir(parents=True)  # a half-made store is removed
        raise InputError("layer 0 of Foo has no attention output projection")

    monkeypatch.setattr(head_stage, "record_heads", refuse)
    cfg = RunConfig(datasets=["x"], models=["t", "s"])
    run = RunLayout(tmp_path)
    run.probes.mkdir(parents=True)
    pairing = [dict(teacher="t", student="s")]
    head_stage.head_stage(cfg, {"t": "t", "s": "s"}, pairing, None, None, run, False)
    assert not (tmp_path / "store_heads" / "t").exists()
    lines, summary = head_section(run)
    assert (
        "- heads not probed: t × `reasoning_tokens` — layer 0 of Foo has no attention"
        in "\n".join(lines)
    )
    assert summary == {}
