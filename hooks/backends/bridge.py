"""TransformerLens 4.x backend: ``TransformerBridge.boot_transformers`` + ``run_with_cache``.

The bridge replaces the wrapped HF model's submodules in place (221 modules instead of 46 on a
3-layer Qwen2) and switches it to eager attention; its outputs stay equal (tested), but the model
is the bridge's from then on. Copying it first costs a second copy of every weight — 3.6 GB for
R1-Distill-Qwen-1.5B in bf16, 65 GB for a 32B model — so the copy is opt-in: by default the bridge
boots on the model you pass (use the backend, not the model, afterwards); ``copy_model=True``
boots it on a deep copy and leaves yours untouched. The tokenizer is always copied (the bridge
re-reads it from the path it was loaded from, so it is saved to, and reloaded from, the backend's
own temporary folder).
Per-head sites read TransformerLens' ``hook_z`` (``[batch, seq, head, d_head]``); ``attn_result``
is ``hook_z`` times the bridge's own ``W_O`` (computed here, not TransformerLens' ``hook_result``,
which needs ``use_attn_result``).
Token-id tensors are passed straight through: no BOS is prepended (the bridge only prepends one
when it tokenizes strings itself).
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from experiments.errors import InputError
from hooks.backends import Backend, forward_inputs
from hooks.heads import head_results
from hooks.sites import check_sites, list_sites, parse_site, site_head

# handan site kind -> TransformerLens hook name inside blocks.{layer}
HOOK_NAMES = {
    "resid_pre": "hook_resid_pre",
    "resid_post": "hook_resid_post",
    "attn_out": "hook_attn_out",
    "mlp_out": "hook_mlp_out",
}


def bridge_hook_name(site: str) -> str:
    """``"resid_post.3"`` -> ``"blocks.3.hook_resid_post"``; a per-head site -> its layer's
    ``"blocks.3.attn.hook_z"`` (``[batch, seq, head, d_head]``, cut per head by the backend)."""
    kind, layer = parse_site(site)
    if site_head(site) is not None:
        return f"blocks.{layer}.attn.hook_z"
    return f"blocks.{layer}.{HOOK_NAMES[kind]}"


class BridgeBackend(Backend):
    """Reads sites with TransformerLens' ``TransformerBridge``, booted on ``hf_model`` itself or,
    with ``copy_model=True``, on a deep copy of it (twice the weights' memory)."""

    name = "bridge"

    def __init__(self, hf_model: nn.Module, tokenizer: Any, *, copy_model: bool = False) -> None:
        from transformer_lens.model_bridge import TransformerBridge
        from transformers import AutoTokenizer

        if tokenizer is None:
            raise InputError("the bridge backend needs the model's tokenizer; pass tokenizer=")
        self._valid = list_sites(hf_model, heads=True)
        self._folder = tempfile.TemporaryDirectory(prefix="handan-bridge-")
        tokenizer.save_pretrained(self._folder.name)
        own_tokenizer = AutoTokenizer.from_pretrained(self._folder.name)
        parameter = next(hf_model.parameters())
        self.bridge = TransformerBridge.boot_transformers(
            self._folder.name,
            hf_model=copy.deepcopy(hf_model) if copy_model else hf_model,
            tokenizer=own_tokenizer,
            device=parameter.device,
            dtype=parameter.dtype,
        )

    def run_with_cache(
        self, inputs: Mapping[str, Tensor], sites: Sequence[str]
    ) -> dict[str, Tensor]:
        check_sites(sites, self._valid, "the bridge backend")
        names = {site: bridge_hook_name(site) for site in sites}
        batch = forward_inputs(inputs)
        with torch.no_grad():
            _, cache = self.bridge.run_with_cache(
                batch["input_ids"],
                return_type=None,
                names_filter=sorted(set(names.values())),
                attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"],
            )
        return {site: self._site(cache, site, name) for site, name in names.items()}

    def _site(self, cache: Any, site: str, name: str) -> Tensor:
        head = site_head(site)
        if head is None:
            return cache[name]
        z = cache[name][:, :, head : head + 1]  # hook_z: [batch, seq, head, d_head]
        if parse_site(site)[0] == "attn_z":
            return z[:, :, 0]
        w_o = self.bridge.blocks[parse_site(site)[1]].attn.W_O  # [head, d_head, d_model]
        return head_results(z, w_o[head : head + 1])[:, :, 0]
