"""The Recorder: a context manager that records site activations on every forward call.

    with Recorder(model, ["resid_post.3", "mlp_out.5"]) as rec:
        model(**batch)
    rec.activations["resid_post.3"]   # Tensor [batch, seq', d_model], detached
    # per-head sites: attn_z.{L}.{H} [batch, seq', d_head], attn_result.{L}.{H} [.., d_model]

Hooks go on at ``__enter__`` and come off at ``__exit__``, also when the block raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from experiments.errors import InputError
from hooks.site_hooks import SiteHooks
from hooks.sites import resolve_site

Positions = slice | Tensor | None
"""Which sequence positions to keep: ``None`` all; a ``slice`` along seq; or a LongTensor
``[batch, m]`` of seq indices gathered per row."""


def select_positions(x: Tensor, positions: Positions) -> Tensor:
    """Rows of ``x [batch, seq, d]`` at ``positions`` -> ``[batch, seq', d]``."""
    if positions is None:
        return x
    if isinstance(positions, slice):
        return x[:, positions]
    if not isinstance(positions, Tensor) or positions.dim() != 2:
        raise InputError(
            "positions must be None, a slice, or a LongTensor [batch, m] of sequence indices; "
            f"got {type(positions).__name__}"
            + (f" with shape {tuple(positions.shape)}" if isinstance(positions, Tensor) else "")
        )
    if positions.shape[0] != x.shape[0]:
        raise InputError(
            f"positions has {positions.shape[0]} rows but the forward batch has {x.shape[0]}; "
            "give one row of indices per batch row"
        )
    index = positions.to(device=x.device, dtype=torch.long)
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class Recorder(SiteHooks):
    """Record the activations of ``sites`` on each forward call of ``model``.

    ``activations[site]`` holds the detached tensor ``[batch, seq', width]`` of the most recent
    forward call (overwritten at every call; ``generate`` calls forward once per step).
    ``positions`` (public, may be changed between forward calls) picks rows along seq before
    anything leaves the model's device; ``device`` / ``dtype`` (``None`` = keep) say where and
    in which dtype the kept rows are stored — under a ``device_map`` each layer runs on its own
    GPU, and ``device`` brings every site's rows to the one device where they are combined
    (``hooks.capture.Capture`` sets it). Unknown sites raise ValueError at construction.
    """

    def __init__(
        self,
        model: nn.Module,
        sites: Sequence[str],
        *,
        positions: Positions = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if isinstance(sites, str):
            sites = [sites]
        super().__init__(model)
        self.sites = list(dict.fromkeys(sites))
        for site in self.sites:
            resolve_site(model, site)  # unknown sites fail here, before any hook goes on
        self.positions = positions
        self.device = device
        self.dtype = dtype
        self.activations: dict[str, Tensor] = {}

    def _recorder(self, site: str) -> Any:
        def record(x: Tensor) -> None:
            kept = select_positions(x.detach(), self.positions)
            kept = kept.to(device=self.device, dtype=self.dtype)
            if kept.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
                kept = kept.clone()  # never hand out a view the model might later edit in place
            self.activations[site] = kept

        return record

    def _site_hooks(self) -> list[tuple[str, Any]]:
        return [(site, self._recorder(site)) for site in self.sites]

    def clear(self) -> None:
        """Forget the recorded activations (hooks stay attached)."""
        self.activations.clear()
