"""One interface, several ways to read site activations from a single forward pass.

- ``"hf"``      :class:`hooks.backends.hf.HFBackend` — plain PyTorch forward hooks via
  :class:`hooks.Recorder` (default, fastest, no extra dependency);
- ``"bridge"``  :class:`hooks.backends.bridge.BridgeBackend` — TransformerLens 4.x
  ``TransformerBridge`` and its ``run_with_cache``;
- ``"nnsight"`` :class:`hooks.backends.nnsight.NNsightBackend` — nnsight 0.8
  ``TransformersModel`` traces, including ``remote=True`` for NDIF-hosted models.

Every backend takes the same inputs and returns the same numbers (site names from
:mod:`hooks.sites`). Batches are left-padded; when ``position_ids`` is missing every backend
derives it from the attention mask (``cumsum - 1``, clamped at 0), so a padded row gives the
activations of the same prompt alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from experiments.errors import InputError

BACKENDS = ("hf", "bridge", "nnsight")


def forward_inputs(inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``input_ids``, ``attention_mask`` (ones if absent) and ``position_ids`` (from the mask if
    absent) for one forward pass over a left-padded batch ``[batch, seq]``."""
    if "input_ids" not in inputs:
        raise InputError(f"inputs need 'input_ids' (and 'attention_mask'); got {sorted(inputs)}")
    ids = inputs["input_ids"]
    mask = inputs.get("attention_mask")
    if mask is None:
        import torch

        mask = torch.ones_like(ids)
    positions = inputs.get("position_ids")
    if positions is None:
        from hooks.engines.hf_loop import position_ids

        positions = position_ids(mask)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": positions}


class Backend(ABC):
    """Reads site activations (see :mod:`hooks.sites`) from one forward pass."""

    name: str

    @abstractmethod
    def run_with_cache(
        self, inputs: Mapping[str, Tensor], sites: Sequence[str]
    ) -> dict[str, Tensor]:
        """One forward over ``inputs`` (``input_ids``, ``attention_mask``, optional
        ``position_ids``; ``[batch, seq]``) -> ``{site: Tensor [batch, seq, width]}`` (``d_model``;
        ``d_head`` for ``attn_z``),
        detached, on the model's device."""


def get_backend(name: str, model: Any, tokenizer: Any = None, **kwargs: Any) -> Backend:
    """The backend called ``name`` ("hf", "bridge" or "nnsight") for ``model``."""
    if name == "hf":
        from hooks.backends.hf import HFBackend

        return HFBackend(model, **kwargs)
    if name == "bridge":
        from hooks.backends.bridge import BridgeBackend

        return BridgeBackend(model, tokenizer, **kwargs)
    if name == "nnsight":
        from hooks.backends.nnsight import NNsightBackend

        return NNsightBackend(model, tokenizer, **kwargs)
    raise InputError(f"unknown backend {name!r}; use one of {BACKENDS}")
