"""The head-ablation control of the steering study on the organism teacher: heads chosen on the
fit items only, random head sets as the null, doses sharing the unsteered run, and a fully
zero-ablated row generating what the model with those heads' projection columns zeroed generates."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ablation(data_dir, tmp_path_factory):
    from experiments.data import load_items
    from experiments.generation import GenerationConfig
    from experiments.generation.traces import generate_traces
    from experiments.models.loading import load_model
    from experiments.models.specs import get_spec
    from experiments.steering.ablation import ablation_study
    from hooks.sites import expand_sites
    from hooks.store import ActivationStore

    spec = get_spec("organism-teacher")
    model, tok = load_model(spec, device="cpu")
    items = load_items("binary", data_dir).iloc[::10].head(30).reset_index(drop=True)
    out = tmp_path_factory.mktemp("organism_heads")
    cfg = GenerationConfig.from_spec(spec, samples=1, seed=0, batch_size=64, temperature=0.0)
    traces = generate_traces(
        model,
        tok,
        spec,
        items,
        config=cfg,
        out=out / "traces.parquet",
        store=out / "store",
        sites=expand_sites(model, "resid_post.1,attn_z.*"),
        positions=["prompt_end"],
        progress=False,
    )
    fit_ids = set(items["item_id"].iloc[::2])
    test_items = items[~items["item_id"].isin(fit_ids)].head(6)
    settings = SimpleNamespace(
        heads=SimpleNamespace(k=2, doses=[0.5, 1.0], n_random=2, mode="zero"),
        target="reasoning_tokens",
        position="prompt_end",
        inject="all",
    )
    table, choice = ablation_study(
        model,
        tok,
        spec,
        ActivationStore(out / "store"),
        items=items,
        traces=traces,
        fit_ids=fit_ids,
        test_items=test_items,
        settings=settings,
        config=cfg,
        seed=0,
        out=lambda condition: out / "heads" / condition,
        progress=False,
    )
    return SimpleNamespace(**locals())


def test_heads_are_chosen_on_fit_items_against_random_sets(ablation):
    a = ablation
    chosen = a.choice[a.choice.chosen]
    assert len(a.choice) == 16 and len(chosen) == 2  # 4 layers x 4 heads, resid_post.1 left out
    assert a.choice.site.str.startswith("attn_z.").all()
    assert set(chosen.site) == set(a.choice.nlargest(2, "score").site)
    assert chosen.n.iloc[0] == len(a.fit_ids)  # scored on the fit items only
    assert sorted(a.table.direction.unique()) == ["heads_best", "random0", "random1"]
    assert set(a.table.item_id) == set(a.test_items.item_id)
    assert sorted(a.table.alpha.unique()) == [0.0, 0.5, 1.0]
    zero = a.table[a.table.alpha == 0].groupby("direction").reasoning_tokens.apply(list)
    assert zero.map(tuple).nunique() == 1  # one unsteered run under every head set
    from experiments.steering.analysis import summarise_steering

    summary = summarise_steering(a.table).set_index("direction")
    assert summary.loc["heads_best", "n_random"] == 2 and np.isfinite(
        summary.loc["heads_best", "slope"]
    )


def test_full_zero_ablation_generates_what_the_zeroed_model_generates(ablation, tmp_path):
    from experiments.generation.traces import generate_traces
    from experiments.models.loading import load_model
    from hooks.sites import attention_projection, parse_site, site_head

    a = ablation
    ref, _ = load_model(a.spec, device="cpu")
    for site in a.choice[a.choice.chosen].site:
        layer, head = parse_site(site)[1], site_head(site)
        with torch.no_grad():
            attention_projection(ref, layer).weight[:, head * 32 : (head + 1) * 32] = 0
    zeroed = generate_traces(
        ref, a.tok, a.spec, a.test_items, config=a.cfg, out=tmp_path / "z.parquet", progress=False
    )
    full = a.table[(a.table.direction == "heads_best") & (a.table.alpha == 1.0)]
    got = full.set_index("item_id").reasoning_tokens.sort_index()
    assert got.to_dict() == zeroed.set_index("item_id").reasoning_tokens.sort_index().to_dict()
    plain = a.table[(a.table.direction == "heads_best") & (a.table.alpha == 0.0)]
    assert len(plain) == len(full) == len(a.test_items)


def test_report_lists_the_ablated_heads_and_their_slope(ablation, tmp_path):
    from experiments.pipeline.layout import RunLayout
    from experiments.pipeline.report.heads import _ablation
    from experiments.steering.ablation import write_head_ablation

    a, run = ablation, RunLayout(tmp_path)
    run.steering.mkdir(parents=True)
    write_head_ablation([SimpleNamespace(heads=a.table, head_choice=a.choice)], run.steering)
    lines, out = _ablation(run)
    heads = sorted(a.choice[a.choice.chosen].site, key=list(a.choice.site).index)
    assert out["organism-teacher"]["heads"] == heads
    row = next(line for line in lines if line.startswith("| organism-teacher"))
    assert ", ".join(heads) in row and "(2 sets)" in row
    write_head_ablation([SimpleNamespace(heads=None, head_choice=None)], run.steering)
    assert _ablation(run) == ([], {})  # a run without ablation leaves no stale table
