"""Head ablation and head steering: zero-ablation equals zeroing the head's projection columns
(also while generating), a planted head's direction disappears downstream, doses are per row and
linear at the layer, mean-ablation writes the mean, a head's steering vector arrives through W_O."""

from __future__ import annotations

import pytest
import tiny
import torch

from hooks import Recorder, Steer
from hooks.ablation import Ablate
from hooks.heads import d_head, out_weights
from hooks.sites import attention_projection

HEAD, D_HEAD = 1, 16


def _ids(batch: int = 3, seq: int = 6) -> torch.Tensor:
    return torch.randint(3, 100, (batch, seq), generator=torch.Generator().manual_seed(2))


def _zeroed(model: torch.nn.Module, layer: int, head: int) -> None:
    """Zero head ``head``'s columns of the projection (rows for GPT-2's Conv1D) in place."""
    proj = attention_projection(model, layer)
    cols = slice(head * D_HEAD, (head + 1) * D_HEAD)
    with torch.no_grad():
        if isinstance(proj, torch.nn.Linear):
            proj.weight[:, cols] = 0
        else:
            proj.weight[cols] = 0


@pytest.mark.parametrize("family", ["qwen2", "llama", "gpt2"])
def test_zero_ablation_equals_zeroed_projection_columns_while_generating(family: str) -> None:
    model, ref = tiny.tiny_model(family), tiny.tiny_model(family)
    assert d_head(model) == D_HEAD
    _zeroed(ref, 1, HEAD)
    ids = _ids()
    kw = dict(max_new_tokens=8, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        plain = model(ids).logits
        with Ablate(model, {f"attn_z.1.{HEAD}": 1.0}):
            ablated = model.generate(ids, **kw)
            logits = model(ids).logits
        torch.testing.assert_close(logits, ref(ids).logits, rtol=0, atol=1e-5)
    assert torch.equal(ablated, ref.generate(ids, **kw))
    assert (logits - plain).abs().max() > 1e-4  # the head mattered
    with torch.no_grad():  # the hooks came off
        torch.testing.assert_close(model(ids).logits, tiny.tiny_model(family)(ids).logits)


def test_ablating_a_planted_head_removes_its_direction_downstream() -> None:
    model = tiny.tiny_model("qwen2")
    u = torch.nn.functional.normalize(
        torch.randn(64, generator=torch.Generator().manual_seed(0)), dim=0
    )
    a = torch.ones(D_HEAD) / D_HEAD**0.5
    proj = attention_projection(model, 0)
    with torch.no_grad():  # head 1 of layer 0 now writes 40 (z . a) u into the residual stream
        proj.weight[:, HEAD * D_HEAD : (HEAD + 1) * D_HEAD] = 40 * u[:, None] * a[None, :]
    sites = ["attn_out.0", f"attn_result.0.{HEAD}", "resid_post.1"]
    ids = _ids()
    with Recorder(model, sites) as rec, torch.no_grad():
        model(ids)
        plain = dict(rec.activations)
        with Ablate(model, {f"attn_z.0.{HEAD}": 1.0}):
            model(ids)
        ablated = dict(rec.activations)
    expected = plain["attn_out.0"] - plain[f"attn_result.0.{HEAD}"]
    torch.testing.assert_close(ablated["attn_out.0"], expected, rtol=0, atol=1e-5)
    assert ablated[f"attn_result.0.{HEAD}"].abs().max() == 0
    before = (plain["resid_post.1"] @ u).abs().mean()
    after = (ablated["resid_post.1"] @ u).abs().mean()
    assert before > 1.0 and after < 0.2 * before  # the planted direction is gone two layers on


def test_per_row_doses_mean_ablation_and_head_steering() -> None:
    model = tiny.tiny_model("gpt2")
    ids, site = _ids(), f"attn_z.1.{HEAD}"
    w_o = out_weights(model, 1)[HEAD]  # [d_head, d_model]
    with Recorder(model, ["attn_out.1", site]) as rec, torch.no_grad():
        model(ids)
        plain = dict(rec.activations)
        result = plain[site] @ w_o
        with Ablate(model, {site: torch.tensor([0.0, 0.5, 1.0])}):
            model(ids)
        got = rec.activations["attn_out.1"]
        for row, t in enumerate((0.0, 0.5, 1.0)):
            want = plain["attn_out.1"][row] - t * result[row]
            torch.testing.assert_close(got[row], want, rtol=0, atol=1e-5)
        mean = plain[site].mean((0, 1))
        with Ablate(model, {site: 1.0}, means={site: mean}):
            model(ids)
        want = plain["attn_out.1"] - result + mean @ w_o
        torch.testing.assert_close(rec.activations["attn_out.1"], want, rtol=0, atol=1e-5)
        v = torch.randn(D_HEAD, generator=torch.Generator().manual_seed(3))
        with Steer(model, site, v, positions="all"):
            model(ids)
        want = plain["attn_out.1"] + v @ w_o
        torch.testing.assert_close(rec.activations["attn_out.1"], want, rtol=0, atol=1e-5)


def test_ablation_refuses_bad_input() -> None:
    model = tiny.tiny_model("qwen2")
    with pytest.raises(ValueError, match="not a head's output"):
        Ablate(model, {"attn_out.1": 1.0})
    with pytest.raises(ValueError, match=r"pass \[16\]"):
        Ablate(model, {"attn_z.1.0": 1.0}, means={"attn_z.1.0": torch.zeros(64)})
    with pytest.raises(ValueError, match="not ablated"):
        Ablate(model, {"attn_z.1.0": 1.0}, means={"attn_z.1.1": torch.zeros(16)})
    with pytest.raises(ValueError, match="read-only"):
        Steer(model, "attn_result.1.0", torch.zeros(64))
    with pytest.raises(ValueError, match="per-row doses"), torch.no_grad():
        with Ablate(model, {"attn_z.1.0": torch.ones(2)}):
            model(_ids())
