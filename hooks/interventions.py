"""Interventions: add a vector to a site while the model runs (steering).

    with Steer(model, "resid_post.10", alpha * direction, positions="generated"):
        model.generate(**batch)

    # one vector per row ([batch, d]): rows of different conditions share one batch
    with Steer(model, "resid_post.10", torch.stack([v0, v1, v2])):
        model(**three_rows)

Forward calls are told apart by their sequence length: a call with ``seq_len > 1`` is the
prompt (prefill) call, a call with ``seq_len == 1`` is one generated-token step of KV-cached
decoding. (A one-token prompt therefore counts as a generated step.) Positions:

- ``prompt_end`` — the last position of the prefill call (index -1 in every row: batches are
  left-padded, so that is each prompt's last token);
- ``prompt``     — every position of the prefill call (left pads too: they are masked out, so what
  is added there reaches no real token);
- ``generated``  — every ``seq_len == 1`` call;
- ``all``        — every position of every call.

A row's vector only ever touches that row: the rows of a batch are computed independently, so a
row steered with ``v`` inside a batch of other rows and vectors gives what the same row gives in
a batch of its own with ``v`` (tests/test_steering_rows.py: identical greedy tokens, activations
within 1e-5 in float32).

Several ``Steer`` objects stack (their vectors add up). Steering hooks run before every other
hook on the module, so a ``Recorder`` (or HF's ``output_hidden_states``) sees the steered tensor
whatever the order of the ``with`` blocks. Hooks come off at ``__exit__``, also when the block
raises.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from experiments.errors import InputError
from hooks.heads import site_width
from hooks.site_hooks import SiteFn, SiteHooks
from hooks.sites import parse_site, resolve_site, site_head
from hooks.steer_positions import DEFAULT_STEER_POSITIONS, STEER_POSITIONS, SteerPositions


def applies(positions: SteerPositions, x: Tensor) -> bool:
    """Whether an intervention at ``positions`` touches this forward call's site tensor ``x``
    ``[batch, seq, width]`` (``seq > 1``: the prefill call; ``seq == 1``: a generated step)."""
    prefill = x.shape[1] > 1
    if positions in ("prompt", "prompt_end"):
        return prefill
    return not prefill if positions == "generated" else True


class Steer(SiteHooks):
    """Add ``vector`` (already scaled by the caller) to ``site``'s output (``resid_pre``: to the
    layer's input) at ``positions``: shape ``[d_model]`` for every row, or ``[batch, d_model]``
    for one vector per row (then every forward call must have exactly ``batch`` rows)."""

    prepend = True  # before any recorder on the same site, so it reads the steered stream

    def __init__(
        self,
        model: nn.Module,
        site: str,
        vector: Tensor,
        *,
        positions: SteerPositions = DEFAULT_STEER_POSITIONS,
    ) -> None:
        if positions not in STEER_POSITIONS:
            raise InputError(
                f"unknown steering positions {positions!r}; use one of {STEER_POSITIONS}"
            )
        resolve_site(model, site)  # unknown sites fail here
        if parse_site(site)[0] == "attn_result":
            raise InputError(
                f"{site} is read-only; steer the head's output before the projection, "
                f"attn_z.{parse_site(site)[1]}.{site_head(site)}"
            )
        super().__init__(model)
        vector = torch.as_tensor(vector)
        width = site_width(model, site)
        if vector.ndim not in (1, 2) or vector.shape[-1] != width:
            raise InputError(
                f"steering vector has shape {tuple(vector.shape)} but {site} has width {width}; "
                f"pass [{width}] (every row) or [batch, {width}] (one vector per row)"
            )
        self.site = site
        self.vector = vector.detach()
        self.positions = positions
        self._cast: Tensor | None = None  # the vector on the device / in the dtype last seen

    def _steer(self, x: Tensor) -> Tensor | None:
        if not applies(self.positions, x):
            return None
        if self._cast is None or (self._cast.device, self._cast.dtype) != (x.device, x.dtype):
            self._cast = self.vector.to(device=x.device, dtype=x.dtype)
        v = self._cast
        if v.ndim == 2 and v.shape[0] != x.shape[0]:
            raise InputError(
                f"{v.shape[0]} per-row steering vectors for a forward batch of {x.shape[0]} "
                "rows; pass one vector per row of every batch"
            )
        if self.positions == "prompt_end":
            x = x.clone()
            x[:, -1] += v
            return x
        return x + (v[:, None, :] if v.ndim == 2 else v)

    def _site_hooks(self) -> Iterable[tuple[str, SiteFn]]:
        return [(self.site, self._steer)]
