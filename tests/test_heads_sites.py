"""Per-head sites on every backend: attn_z is the projection's input cut per head, and the heads'
residual writes (attn_result) sum, with the bias, to attn_out (fp32, 1e-5)."""

from __future__ import annotations

import pytest
import tiny
import torch
from test_hooks_backends import PROMPTS, left_padded, tiny_model, tiny_tokenizer

from hooks import Recorder, get_backend, list_sites
from hooks.heads import d_head, heads_of, out_bias, site_widths
from hooks.sites import attention_projection, check_sites, expand_sites, n_heads, parse_site

pytestmark = pytest.mark.slow  # transformer_lens and nnsight imports take seconds

N_LAYERS, D, HEADS, D_HEAD = 3, 64, 4, 16
ATOL = 1e-5


@pytest.fixture(scope="module", params=["qwen2", "llama", "gpt2"])
def setup(request: pytest.FixtureRequest) -> dict:
    model, tokenizer = tiny_model(request.param), tiny_tokenizer()
    backends = {
        name: get_backend(
            name, model, tokenizer, **({"copy_model": True} if name == "bridge" else {})
        )
        for name in ("hf", "bridge", "nnsight")
    }
    return {"family": request.param, "model": model, "backends": backends}


def _projection_inputs(model: torch.nn.Module, batch: dict) -> tuple[dict, dict]:
    """The projection's input and the attention's output of every layer, read by plain hooks
    (not handan's), split by a reshape (not einops)."""
    z, out, handles = {}, {}, []
    for layer in range(N_LAYERS):
        proj = attention_projection(model, layer)
        handles.append(
            proj.register_forward_pre_hook(
                lambda _m, args, layer=layer: z.__setitem__(
                    layer, args[0].reshape(*args[0].shape[:2], HEADS, D_HEAD)
                )
            )
        )
        handles.append(
            proj.register_forward_hook(lambda _m, _a, o, layer=layer: out.__setitem__(layer, o))
        )
    with torch.no_grad():
        model(**batch, position_ids=(batch["attention_mask"].cumsum(-1) - 1).clamp(min=0))
    for h in handles:
        h.remove()
    return z, out


def test_heads_sum_to_attn_out_on_every_backend(setup: dict) -> None:
    model = setup["model"]
    assert (n_heads(model), d_head(model)) == (HEADS, D_HEAD)
    sites = expand_sites(model, "attn_z.*, attn_result.*, attn_out.*")
    assert len(sites) == N_LAYERS * (2 * HEADS + 1)
    batch = left_padded(PROMPTS)
    real = batch["attention_mask"].bool()
    z_ref, out_ref = _projection_inputs(model, batch)
    before = tiny.hook_ids(model)
    for name, backend in setup["backends"].items():
        acts = backend.run_with_cache(batch, sites)
        for layer in range(N_LAYERS):
            z = heads_of(acts, layer)
            assert z.shape == (3, 7, HEADS, D_HEAD), name
            torch.testing.assert_close(z[real], z_ref[layer][real], rtol=0, atol=ATOL)
            result = heads_of(acts, layer, "attn_result")
            assert result.shape == (3, 7, HEADS, D)
            bias = out_bias(model, layer)
            total = result.sum(2) + (0 if bias is None else bias)
            attn_out = acts[f"attn_out.{layer}"]
            torch.testing.assert_close(total[real], attn_out[real], rtol=0, atol=ATOL)
            torch.testing.assert_close(attn_out[real], out_ref[layer][real], rtol=0, atol=ATOL)
            assert (result[real].abs().sum((0, 2)) > 0).all()  # every head writes something
    assert tiny.hook_ids(model) == before


def test_recorder_and_widths(setup: dict) -> None:
    model = setup["model"]
    batch = left_padded(PROMPTS)
    sites = ["attn_z.1.2", "attn_result.1.2", "resid_post.1"]
    with Recorder(model, sites, positions=slice(-2, None)) as rec, torch.no_grad():
        model(**batch)
    assert rec.activations["attn_z.1.2"].shape == (3, 2, D_HEAD)
    assert rec.activations["attn_result.1.2"].shape == (3, 2, D)
    assert site_widths(model, sites) == {"attn_z.1.2": D_HEAD}
    assert parse_site("attn_z.1.2") == ("attn_z", 1)
    assert len(list_sites(model)) == 4 * N_LAYERS  # the residual-width sites stay the default
    assert expand_sites(model, "attn_z.2.*") == [f"attn_z.2.{h}" for h in range(HEADS)]
    with pytest.raises(ValueError, match=r"attn_z\.0\.\.attn_z\.2 x heads \.0\.\.3"):
        check_sites(["attn_z.0.4"], list_sites(model, heads=True), "tiny")
    for backend in setup["backends"].values():
        with pytest.raises(ValueError, match="unknown site"):
            backend.run_with_cache(batch, ["attn_z.3.0"])
