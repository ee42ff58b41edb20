"""`handan record --sites attn_z.*` on the shipped organism: one store key per head, d_head wide
(manifest ``widths``), equal to what every backend reads from a clean forward over the prompt."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from test_record_cli import items_file, record  # noqa: F401 (a fixture)

from hooks import ActivationStore, get_backend

pytestmark = pytest.mark.slow  # generation + the three backends' imports


def test_record_attn_z_per_head_matches_every_backend(items_file, tmp_path):  # noqa: F811
    from experiments.models.loading import load_model
    from experiments.models.specs import get_spec
    from hooks.engines.hf_loop import encode_prompts, left_pad

    out = tmp_path / "store"
    result = record(
        items_file, out, "--sites", "attn_z.*,resid_post.1", "--positions", "prompt_end"
    )
    assert result.exit_code == 0, result.output
    store = ActivationStore(out)
    heads = [f"attn_z.{layer}.{h}" for layer in range(4) for h in range(4)]
    assert store.sites == heads + ["resid_post.1"]
    assert store.manifest["widths"] == dict.fromkeys(heads, 32)  # teacher: 4 heads x 32 = 128
    assert store.width("resid_post.1") == 128
    spec = get_spec("organism-teacher")
    model, tok = load_model(spec, device="cpu")
    model = model.float()
    items = pd.read_parquet(items_file).set_index("item_id")
    X, index = store.load("attn_z.2.3", "prompt_end")
    assert X.shape == (len(items), 32)
    ids = encode_prompts(
        tok, items.loc[index.item_id, "prompt"].tolist(), template_kwargs=spec.template_kwargs
    )
    input_ids, mask, _ = left_pad(ids, tok.pad_token_id, "cpu")
    inputs = {"input_ids": input_ids, "attention_mask": mask}
    for name in ("hf", "nnsight", "bridge"):  # the bridge last: it rewires the model it boots on
        got = get_backend(name, model, tok).run_with_cache(inputs, ["attn_z.2.3"])["attn_z.2.3"]
        torch.testing.assert_close(
            got[:, -1], torch.as_tensor(X), atol=2e-3, rtol=2e-3, msg=lambda m, n=name: f"{n}: {m}"
        )


def test_probe_cli_sweeps_the_recorded_heads(items_file, tmp_path):  # noqa: F811
    from test_record_cli import runner

    from experiments.cli import app

    out = tmp_path / "store"
    assert record(items_file, out, "--sites", "attn_z.*,resid_post.1").exit_code == 0
    probed = tmp_path / "probe"
    result = runner.invoke(
        app,
        [
            "probe",
            "--store",
            str(out),
            "--items",
            str(items_file),
            "--traces",
            str(out / "traces.parquet"),
            "--target",
            "prompt_tokens",
            "--out",
            str(probed),
            "--sites",
            "attn_z.*",
            "--cv",
            "2",
            "--n-permutations",
            "9",
            "--n-boot",
            "50",
            "--n-splits",
            "2",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    sweep = pd.read_csv(probed / "probe_sweep.csv")
    heads = sweep[~sweep.site.str.startswith("baseline:")]
    assert sorted(heads.site) == sorted(f"attn_z.{la}.{h}" for la in range(4) for h in range(4))
    assert heads.p_fwe.min() >= 0.1  # one max-T family over the 16 heads: floor 1 / (1 + 9)
    assert (probed / "probe_depth.png").exists()
    best = pd.read_csv(probed / "best_site.csv").iloc[0]
    assert best.site.startswith("attn_z.")
