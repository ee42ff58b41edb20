"""Attention heads: the shapes of the per-head sites (``attn_z``, ``attn_result``; see
:mod:`hooks.sites`), written with einops.

The input of a layer's attention output projection is every head's output side by side,
``b p (h d)`` (HF merges ``[batch, head, seq, d_head]`` by ``transpose(1, 2).reshape``, so the head
axis is the outer one); :func:`split_heads` names the axes, :func:`out_weights` reads the
projection's weight as ``W_O [head, d_head, d_model]`` (``nn.Linear`` stores ``[d_model, h d]``,
GPT-2's ``Conv1D`` ``[h d, d_model]``), and :func:`head_results` is each head's contribution to
the residual stream, ``einsum("b p h d, h d m -> b p h m")``, whose sum over heads plus the
projection's bias is ``attn_out`` (tests/test_heads_sites.py, every backend, fp32, 1e-5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from einops import einsum, rearrange
from torch import Tensor, nn

from experiments.errors import InputError
from hooks.sites import HEAD_KINDS, attention_projection, d_model, n_heads, parse_site, site_head


def split_heads(x: Tensor, heads: int) -> Tensor:
    """``[batch, seq, heads * d_head]`` -> ``[batch, seq, heads, d_head]`` (a view)."""
    if x.shape[-1] % heads:
        raise InputError(
            f"a width of {x.shape[-1]} does not split into {heads} heads; pass the input of the "
            "attention output projection ([batch, seq, n_heads * d_head])"
        )
    return rearrange(x, "b p (h d) -> b p h d", h=heads)


def merge_heads(z: Tensor) -> Tensor:
    """``[batch, seq, heads, d_head]`` -> ``[batch, seq, heads * d_head]``."""
    return rearrange(z, "b p h d -> b p (h d)")


def d_head(model: nn.Module, layer: int = 0) -> int:
    """Width of one head's output at ``layer``: the projection's input width / ``n_heads``."""
    proj = attention_projection(model, layer)
    width = proj.in_features if isinstance(proj, nn.Linear) else proj.weight.shape[0]
    return int(width) // n_heads(model)


def out_weights(model: nn.Module, layer: int) -> Tensor:
    """``W_O [head, d_head, d_model]`` of ``layer`` (rows = what one unit of a head's output
    writes into the residual stream), a view of the projection's weight."""
    proj = attention_projection(model, layer)
    heads = n_heads(model)
    if isinstance(proj, nn.Linear):  # y = x @ W.T, W [d_model, h d]
        return rearrange(proj.weight, "m (h d) -> h d m", h=heads)
    return rearrange(proj.weight, "(h d) m -> h d m", h=heads)  # Conv1D: y = x @ W, W [h d, m]


def out_bias(model: nn.Module, layer: int) -> Tensor | None:
    """The projection's bias ``[d_model]`` (GPT-2), or None (Qwen2/Qwen3/Llama have none)."""
    return attention_projection(model, layer).bias


def head_results(z: Tensor, w_o: Tensor) -> Tensor:
    """Each head's write into the residual stream: ``z [b, p, h, d]`` x ``W_O [h, d, m]`` ->
    ``[b, p, h, m]`` (no bias: the projection adds it once, not per head)."""
    return einsum(z, w_o.to(z.dtype), "b p h d, h d m -> b p h m")


def site_width(model: nn.Module, site: str) -> int:
    """Length of ``site``'s vectors: ``d_head`` for ``attn_z``, else ``d_model``."""
    kind, layer = parse_site(site)
    return d_head(model, layer) if kind == "attn_z" else d_model(model)


def site_widths(model: nn.Module, sites: Sequence[str]) -> dict[str, int]:
    """``{site: width}`` of the sites narrower than ``d_model`` (the store manifest's
    ``widths``); empty when every site is ``d_model`` wide."""
    width = d_model(model)
    out = {site: site_width(model, site) for site in sites}
    return {site: w for site, w in out.items() if w != width}


def heads_of(acts: Mapping[str, Tensor], layer: int, kind: str = "attn_z") -> Tensor:
    """Layer ``layer``'s per-head sites of ``acts`` stacked on a head axis:
    ``[batch, seq, head, width]`` (every head 0..H-1 must be there)."""
    if kind not in HEAD_KINDS:
        raise InputError(f"unknown per-head kind {kind!r}; use one of {HEAD_KINDS}")
    found = {
        site_head(s): t
        for s, t in acts.items()
        if site_head(s) is not None and parse_site(s) == (kind, layer)
    }
    if not found or sorted(found) != list(range(len(found))):
        raise InputError(
            f"{kind}.{layer}.* has heads {sorted(found)} in these activations; record every "
            f"head ({kind}.{layer}.*)"
        )
    return rearrange([found[h] for h in range(len(found))], "h b p d -> b p h d")
