"""The causal test on the model organism's teacher: steering along its own length direction (fit
with probes.directions on its prompt_end activations vs its own log reasoning tokens, on items
disjoint from the steered ones) moves how long it thinks, in the predicted sign, and far more than
random directions of equal norm.

What is asserted, and why not "random directions have a CI covering 0": pushing the prompt's
residual stream by ~1 residual norm along *any* direction perturbs a small model's generation,
and with common random numbers the paired design detects even small perturbation effects. The
meaningful claim is specificity: the length direction's slope is positive with a CI excluding 0,
and its lower bound exceeds every random direction's |slope|. (Measured numbers: see the report.)
Steering is over all prompt positions (``positions="prompt"``): on an SFT stand-in teacher, the
last prompt token alone moved length little at |alpha| <= 1 and broke generation at |alpha| >= 2.
"""

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

CHECKPOINT = (
    Path(__file__).resolve().parents[1] / "experiments" / "organism" / "checkpoints" / "teacher"
)
SITE = "resid_post.1"
ALPHAS = (-1.0, -0.5, 0.5, 1.0)
POSITIONS = "prompt"
N_FIT, N_HELD = 160, 48


@pytest.fixture(scope="module")
def steered(data_dir, tmp_path_factory):
    if not CHECKPOINT.exists():
        pytest.skip(f"organism teacher checkpoint {CHECKPOINT} not trained yet")
    from experiments.data import load_items
    from experiments.generation import GenerationConfig
    from experiments.generation.traces import generate_traces
    from experiments.models.loading import load_model
    from experiments.models.specs import get_spec
    from experiments.steering import prompt_end_activations, random_directions, run_steering
    from probes.directions import fit_direction

    spec = get_spec("organism-teacher")
    model, tok = load_model(spec, device="cpu")
    items = load_items("binary", data_dir).sample(frac=1.0, random_state=0).reset_index(drop=True)
    fit, held = items.iloc[:N_FIT], items.iloc[N_FIT : N_FIT + N_HELD]
    out = tmp_path_factory.mktemp("organism_steer")
    cfg = GenerationConfig.from_spec(spec, samples=1, seed=0, batch_size=64)
    traces = generate_traces(
        model, tok, spec, fit, config=cfg, out=out / "fit.parquet", progress=False
    )
    y = np.log1p(
        traces.groupby("item_id")["reasoning_tokens"].mean().reindex(fit["item_id"]).to_numpy(float)
    )
    X = prompt_end_activations(model, tok, spec, fit["prompt"].tolist(), SITE)
    scale = float(np.linalg.norm(X, axis=1).mean())
    directions = {"length": fit_direction(X, y, method="diff_means")}
    directions |= {f"random{k}": v for k, v in enumerate(random_directions(X.shape[1], 3, seed=0))}
    table = run_steering(
        model,
        tok,
        spec,
        held,
        directions=directions,
        site=SITE,
        alphas=ALPHAS,
        positions=POSITIONS,
        scale=scale,
        config=cfg,
        out=out / "steer",
        progress=False,
    )
    return table, model


def test_length_direction_moves_reasoning_length_and_random_directions_do_not(steered):
    from experiments.steering import dose_response, summarise_steering

    table, _ = steered
    summary = summarise_steering(table, n_boot=2000).set_index("direction")
    print(summary.to_string())
    print(dose_response(table, n_boot=500).to_string())
    length = summary.loc["length"]
    assert length["slope_lo"] > 0, (
        "steering along +length should lengthen reasoning (CI excluding 0)"
    )
    random = summary.loc[[d for d in summary.index if d.startswith("random")], "slope"].abs()
    assert len(random) == 3 and length["slope_lo"] > random.max(), (
        "the length direction is not specific"
    )


def test_no_hooks_left_on_the_teacher(steered):
    _, model = steered
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == 0
