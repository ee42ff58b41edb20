"""nnsight 0.8 backend: one ``TransformersModel.trace`` per call, saving each site's value.

``NNsightBackend(hf_model, tokenizer)`` wraps a loaded HF model (nnsight hooks it only while a
trace runs). nnsight sets the tokenizer's padding side and pad token, so the backend hands it a
copy. In transformers 5 a decoder layer's ``.output`` is a tensor (a tuple before); attention
modules return ``(attn_output, weights)``; both are handled.

Per-head sites read the input of the attention output projection once per layer (``.input`` of
``o_proj`` / ``c_proj``) and cut it per head with :mod:`hooks.heads`; ``attn_result`` multiplies
by the local ``W_O``, so it is refused with ``remote=True`` (the local model has no weights).

Remote (NDIF-hosted) models: ``NNsightBackend("meta-llama/Llama-3.1-70B", remote=True)`` builds
nnsight's meta-device model from the repo id (no weights are downloaded) and runs every trace
with ``remote=True`` on NDIF; it needs network access and an NDIF API key
(``nnsight.CONFIG.set_default_api_key(...)``), so it cannot be tested offline. The saved
activations come back as local tensors with the same site names.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from experiments.errors import InputError
from hooks.backends import Backend, forward_inputs
from hooks.heads import head_results, out_weights, split_heads
from hooks.sites import check_sites, list_sites, n_heads, parse_site, resolve_site, site_head


class NNsightBackend(Backend):
    """Reads sites with nnsight traces (``remote=True`` runs them on NDIF)."""

    name = "nnsight"

    def __init__(
        self, hf_model: nn.Module | str, tokenizer: Any = None, *, remote: bool = False
    ) -> None:
        from nnsight import TransformersModel

        own_tokenizer = None if tokenizer is None else copy.deepcopy(tokenizer)
        self.model = TransformersModel(hf_model, tokenizer=own_tokenizer)
        self.remote = remote
        module = self.model._module
        self._valid = list_sites(module, heads=True)
        self._paths = {id(m): name for name, m in module.named_modules()}
        self._module = module

    def run_with_cache(
        self, inputs: Mapping[str, Tensor], sites: Sequence[str]
    ) -> dict[str, Tensor]:
        check_sites(sites, self._valid, "the nnsight backend")
        if self.remote and any(parse_site(s)[0] == "attn_result" for s in sites):
            raise InputError(
                "attn_result needs the model's weights here; with remote=True record attn_z.L.H "
                "and multiply by W_O where the weights are"
            )
        # nnsight reads modules in the order the forward pass reaches them
        order = {site: i for i, site in enumerate(self._valid)}
        targets, read = {}, {}  # per-head sites of a layer share one read of the projection
        for site in sorted(dict.fromkeys(sites), key=order.__getitem__):
            module, kind = resolve_site(self._module, site)
            path = self._paths[id(module)]
            targets.setdefault((path, kind), self.model.get(path))
            read[site] = (path, kind)
        saved: dict[Any, Any] = {}
        with torch.no_grad(), self.model.trace(dict(forward_inputs(inputs)), remote=self.remote):
            for key, envoy in targets.items():
                value = envoy.input if key[1] == "input" else envoy.output
                saved[key] = (value[0] if isinstance(value, tuple) else value).save()
        return {site: self._site(site, saved[read[site]].detach()) for site in sites}

    def _site(self, site: str, value: Tensor) -> Tensor:
        head = site_head(site)
        if head is None:
            return value
        kind, layer = parse_site(site)
        z = split_heads(value, n_heads(self._module))[:, :, head : head + 1]
        if kind == "attn_z":
            return z[:, :, 0]
        w_o = out_weights(self._module, layer)[head : head + 1]
        return head_results(z, w_o.to(z.device))[:, :, 0]
