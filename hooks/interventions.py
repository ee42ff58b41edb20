"""Interventions: add a vector to a site while the model runs (steering).

    with Steer(model, "resid_post.10", alpha * direction, positions="generated"):
        model.generate(**batch)

    # one vector per row ([batch, d]): rows of different conditions share one batch
    with Steer(model, "resid_post.10", torch.stack([v0, v1, v2])):
        model(**three_rows)

    # per-row vectors picked by each row's prompt, batch after batch
    with PromptSteer(model, "resid_post.10", {tuple(prompt_ids): vector, ...}):
        generate_traces(...)

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

Several steering objects stack (their vectors add up). Steering hooks run before every other
hook on the module, so a ``Recorder`` (or HF's ``output_hidden_states``) sees the steered tensor
whatever the order of the ``with`` blocks. Hooks come off at ``__exit__``, also when the block
raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import torch
from torch import Tensor, nn

from experiments.errors import InputError
from hooks.sites import add_hook, d_model, resolve_site
from hooks.steer_positions import DEFAULT_STEER_POSITIONS, STEER_POSITIONS, SteerPositions


class Steer:
    """Add ``vector`` (already scaled by the caller) to ``site``'s output (``resid_pre``: to the
    layer's input) at ``positions``: shape ``[d_model]`` for every row, or ``[batch, d_model]``
    for one vector per row (then every forward call must have exactly ``batch`` rows)."""

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
        self._module, self._kind = resolve_site(model, site)
        vector = torch.as_tensor(vector)
        width = d_model(model)
        if vector.ndim not in (1, 2) or vector.shape[-1] != width:
            raise InputError(
                f"steering vector has shape {tuple(vector.shape)} but {site} has width {width}; "
                f"pass [{width}] (every row) or [batch, {width}] (one vector per row)"
            )
        self.model = model
        self.site = site
        self.vector = vector.detach()
        self.positions = positions
        self._handles: list[Any] = []
        self._cast: Tensor | None = None  # the vector on the device / in the dtype last seen

    def _vector_for(self, x: Tensor) -> Tensor:
        """The vector(s) to add to ``x`` [batch, seq, d], on its device and in its dtype."""
        if self._cast is None or (self._cast.device, self._cast.dtype) != (x.device, x.dtype):
            self._cast = self.vector.to(device=x.device, dtype=x.dtype)
        return self._cast

    def _steer(self, x: Tensor) -> Tensor | None:
        prefill = x.shape[1] > 1
        if self.positions in ("prompt", "prompt_end") and not prefill:
            return None
        if self.positions == "generated" and prefill:
            return None
        v = self._vector_for(x)
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

    def _hooks(self) -> list[Any]:
        return [add_hook(self._module, self._kind, self._steer, prepend=True)]

    def __enter__(self) -> Self:
        if self._handles:
            raise RuntimeError("this steering is already active; use one `with` block at a time")
        try:
            self._handles = self._hooks()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


class PromptSteer(Steer):
    """One vector per row, picked at every prefill call by the row's prompt token ids (the
    unpadded ids, read from ``input_ids`` and ``attention_mask`` of the model's forward call):
    ``vectors`` maps each prompt (a sequence of ids) to its vector ``[d_model]``. A row keeps its
    vector through the decoding steps that follow, until the next prefill — rows stay in their
    order within a batch, as in ``hooks.engines.hf_loop`` and ``model.generate``. So rows of any
    mix of conditions can share a batch, however the caller batches them, as long as each prompt
    has one vector; a row whose prompt has none is an error."""

    def __init__(
        self,
        model: nn.Module,
        site: str,
        vectors: Mapping[Sequence[int], Tensor],
        *,
        positions: SteerPositions = DEFAULT_STEER_POSITIONS,
    ) -> None:
        if not vectors:
            raise InputError("PromptSteer needs at least one (prompt ids -> vector) pair")
        self._row_of = {tuple(int(t) for t in ids): k for k, ids in enumerate(vectors)}
        table = torch.stack([torch.as_tensor(v) for v in vectors.values()])
        super().__init__(model, site, table, positions=positions)
        self._rows: Tensor | None = None  # indices into the table, for the batch in flight

    def _pick(self, _module: nn.Module, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None or ids.ndim != 2:
            raise InputError("PromptSteer needs the model called with input_ids [batch, seq]")
        if ids.shape[1] == 1 and self._rows is not None:
            return  # a decoding step: rows keep the vectors of their prefill
        mask = kwargs.get("attention_mask")
        keep = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()
        rows = []
        for b, (row, m) in enumerate(zip(ids.tolist(), keep.tolist())):
            prompt = tuple(t for t, k in zip(row, m) if k)
            if prompt not in self._row_of:
                raise InputError(
                    f"row {b} of the batch has a prompt of {len(prompt)} tokens with no steering "
                    "vector; give PromptSteer a vector for every prompt it will see"
                )
            rows.append(self._row_of[prompt])
        self._rows = torch.tensor(rows, device=ids.device)

    def _vector_for(self, x: Tensor) -> Tensor:
        if self._rows is None:
            raise InputError("PromptSteer saw a site call before any prefill of the model")
        table = super()._vector_for(x)
        return table[self._rows.to(table.device)]

    def _hooks(self) -> list[Any]:
        pick = self.model.register_forward_pre_hook(self._pick, with_kwargs=True, prepend=True)
        return [pick, *super()._hooks()]

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        self._rows = None
