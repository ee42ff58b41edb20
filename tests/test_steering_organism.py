"""One model's steering study (``experiments.steering.study.run_study``) on the organism teacher:
every choice is made on the fit items — the site by a sweep over them only, the directions fitted
on them, the linear range by the rule on them — and only held-out items are steered; random
directions are steered at ±alpha_max only, the targeted ones on the whole grid as well."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

GRID = [-0.5, -0.25, 0.0, 0.25, 0.5]


@pytest.fixture(scope="module")
def study(data_dir, tmp_path_factory):
    from experiments.data import load_items
    from experiments.generation import GenerationConfig
    from experiments.generation.traces import generate_traces
    from experiments.models.loading import load_model
    from experiments.models.specs import get_spec
    from experiments.steering.study import run_study
    from hooks.sites import expand_sites
    from hooks.store import ActivationStore

    spec = get_spec("organism-teacher")
    model, tok = load_model(spec, device="cpu")
    items = load_items("binary", data_dir).iloc[::10].head(36).reset_index(drop=True)
    out = tmp_path_factory.mktemp("organism_study")
    cfg = GenerationConfig.from_spec(spec, samples=1, seed=0, batch_size=64)
    traces = generate_traces(
        model,
        tok,
        spec,
        items,
        config=cfg,
        out=out / "traces.parquet",
        store=out / "store",
        sites=expand_sites(model, "resid_post.*"),
        positions=["prompt_end"],
        progress=False,
    )
    fit_ids = set(items["item_id"].iloc[::2])
    settings = SimpleNamespace(
        site=None,
        target="reasoning_tokens",
        control_target="human_rt",
        position="prompt_end",
        inject="prompt",
        method="diff_means",
        alphas=GRID,
        n_random=3,
        n_calibration=2,
        linear_tolerance=0.1,
        calibration_items=12,
    )
    result = run_study(
        model,
        tok,
        spec,
        store=ActivationStore(out / "store"),
        items=items,
        traces=traces,
        fit_ids=fit_ids,
        test_items=items[~items["item_id"].isin(fit_ids)],
        settings=settings,
        config=cfg,
        seed=0,
        out=lambda condition: out / "steer" / condition,
        progress=False,
    )
    return result, items, fit_ids, model


def test_every_choice_is_made_on_the_fit_items(study):
    from experiments.steering.calibration import pick_alpha_max

    result, items, fit_ids, _ = study
    sites = result.sites
    assert set(sites["site"]) == {"resid_post.0", "resid_post.1", "resid_post.2"}  # not the last
    assert (sites["n"] == len(fit_ids)).all()
    chosen = sites.loc[sites["chosen"], "site"].item()
    assert chosen == sites.loc[sites["score"].idxmax(), "site"]
    for vector, meta in result.directions.values():
        assert meta["site"] == chosen and set(meta["item_ids"]) <= fit_ids
        assert np.linalg.norm(vector) == pytest.approx(1.0)
    linear = result.linear
    assert linear["n_items"].max() == 12  # calibration_items of the fit items
    alpha_max = linear["alpha_max"].iloc[0]
    assert alpha_max == pick_alpha_max(linear, [0.25, 0.5])
    assert (linear["site"] == chosen).all() and (linear["scale"] > 0).all()


def test_only_held_out_items_are_steered_and_random_directions_at_alpha_max(study):
    result, items, fit_ids, model = study
    table, alpha_max = result.steering, result.linear["alpha_max"].iloc[0]
    assert set(table["item_id"]) == set(items["item_id"]) - fit_ids
    alphas = table.groupby("direction")["alpha"].apply(lambda a: sorted(set(a)))
    for direction, values in alphas.items():
        if direction.startswith("random"):
            assert values == [-alpha_max, 0.0, alpha_max]
        else:
            assert values == sorted({*GRID, -alpha_max, alpha_max})
    from experiments.steering import summarise_steering

    summary = summarise_steering(table).set_index("direction")
    assert (summary["alpha_max"] == alpha_max).all()
    assert summary.loc["reasoning_tokens", "n_random"] == 3
    assert pd.notna(summary.loc["reasoning_tokens", "p_quadratic"])
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == 0
