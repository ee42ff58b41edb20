"""The default backend: plain PyTorch forward hooks on the HF model, via :class:`hooks.Recorder`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from hooks.backends import Backend, forward_inputs
from hooks.recorder import Recorder


class HFBackend(Backend):
    """Reads sites with forward hooks on ``model`` itself (no copy, nothing left attached)."""

    name = "hf"

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def run_with_cache(
        self, inputs: Mapping[str, Tensor], sites: Sequence[str]
    ) -> dict[str, Tensor]:
        with Recorder(self.model, sites) as rec, torch.no_grad():
            self.model(**forward_inputs(inputs), use_cache=False)
        return dict(rec.activations)
