"""Head ablation: replace attention heads' outputs (``attn_z.{L}.{H}``, before the output
projection) by zeros or by a mean, while the model runs — also during generation.

    with Ablate(model, {"attn_z.3.1": 1.0, "attn_z.5.0": 1.0}):              # zero-ablation
        model.generate(**batch)
    with Ablate(model, {"attn_z.3.1": torch.tensor([0.0, 0.5, 1.0])}, means={"attn_z.3.1": m}):
        model(**three_rows)                                     # per-row doses, mean-ablation

A dose ``t`` moves the head's output to ``(1 - t) * z + t * m`` (``m`` = 0, or the head's mean
``[d_head]``): ``t = 1`` is full ablation, ``t = 0`` leaves the row untouched, so rows of
different conditions share a batch (one dose per row, ``[batch]``). Zero-ablating head ``H`` of
layer ``L`` equals zeroing its columns of the output projection (tested); the head's write
``attn_result.L.H`` leaves ``attn_out.L`` and everything downstream that reads it. Positions as
for :class:`hooks.interventions.Steer` (default: every position of every call). Hooks run before
every other hook of the module (a recorder sees the ablated tensor) and come off at ``__exit__``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from experiments.errors import InputError
from hooks.heads import site_width
from hooks.interventions import applies
from hooks.site_hooks import SiteHooks
from hooks.sites import parse_site, resolve_site
from hooks.steer_positions import STEER_POSITIONS, SteerPositions


@dataclass(frozen=True)
class HeadAblation:
    """One row's ablation (``experiments.steering``: a condition's payload): ``sites`` (attn_z
    heads) moved by ``dose`` toward ``means`` (``{site: [d_head]}``; None: zero)."""

    sites: tuple[str, ...]
    dose: float
    means: Mapping[str, Any] | None = None


class Ablate(SiteHooks):
    """Ablate the heads of ``doses`` (``{attn_z site: dose}``, a float or one dose per row
    ``[batch]``) towards ``means`` (``{site: [d_head]}``; None or a missing site: zero)."""

    prepend = True  # every reader sees the ablated heads

    def __init__(
        self,
        model: nn.Module,
        doses: Mapping[str, float | Tensor],
        *,
        means: Mapping[str, Tensor] | None = None,
        positions: SteerPositions = "all",
    ) -> None:
        if positions not in STEER_POSITIONS:
            raise InputError(
                f"unknown ablation positions {positions!r}; use one of {STEER_POSITIONS}"
            )
        if not doses:
            raise InputError("no heads to ablate; pass {'attn_z.L.H': dose, ...}")
        means = dict(means or {})
        super().__init__(model)
        self.positions = positions
        self.doses: dict[str, Tensor] = {}
        self.means: dict[str, Tensor | None] = {}
        for site, dose in doses.items():
            resolve_site(model, site)
            if parse_site(site)[0] != "attn_z":
                raise InputError(
                    f"{site} is not a head's output; ablate attn_z.L.H sites (heads before the "
                    "output projection)"
                )
            dose = torch.as_tensor(dose, dtype=torch.float32).detach()
            if dose.ndim > 1:
                raise InputError(
                    f"the dose of {site} has shape {tuple(dose.shape)}; pass a float or [batch]"
                )
            mean = means.pop(site, None)
            width = site_width(model, site)
            if mean is not None and tuple(mean.shape) != (width,):
                raise InputError(
                    f"the mean of {site} has shape {tuple(mean.shape)}; pass [{width}]"
                )
            self.doses[site], self.means[site] = dose, None if mean is None else mean.detach()
        if means:
            raise InputError(f"means given for heads that are not ablated: {sorted(means)}")

    def _ablate(self, site: str) -> Any:
        def edit(z: Tensor) -> Tensor | None:
            if not applies(self.positions, z):
                return None
            t = self.doses[site].to(device=z.device, dtype=z.dtype)
            if t.ndim == 1:
                if t.shape[0] != z.shape[0]:
                    raise InputError(
                        f"{t.shape[0]} per-row doses for {site} but the forward batch has "
                        f"{z.shape[0]} rows; pass one dose per row of every batch"
                    )
                t = t[:, None, None]
            mean = self.means[site]
            target = torch.zeros_like(z) if mean is None else mean.to(z).expand_as(z)
            new = z + t * (target - z)
            if self.positions == "prompt_end":
                new = torch.cat([z[:, :-1], new[:, -1:]], dim=1)
            return new

        return edit

    def _site_hooks(self):
        return [(site, self._ablate(site)) for site in self.doses]
