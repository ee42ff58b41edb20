"""The engine that runs steering conditions as rows of shared batches.

``generate_traces`` hands an engine one batch of requests at a time; this one (the ``hf`` engine
underneath) looks each request up by its seed — every (condition, item, sample) row of a steering
run is a request of its own, with a seed of its own — and then

- runs the batch inside ``hooks.Steer`` with one vector per row (``[batch, d]``: the row's
  condition's vector, zeros for the unsteered rows) and, when some rows ablate heads
  (``hooks.ablation.HeadAblation``), inside ``hooks.ablation.Ablate`` with one
  dose per row and head (0 for the rows that leave that head alone), and
- gives each row the seed of its (item, sample) — the seed a separate run of that condition would
  give it — so every condition draws the same random numbers for the same sample (common random
  numbers) and a row draws what it would draw in a run of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import replace

import numpy as np

from experiments.errors import InputError
from hooks.ablation import HeadAblation
from hooks.engines.hf import HFEngine


class SteeringEngine(HFEngine):
    """``rows`` maps the seed ``generate_traces`` gives a row to (the seed to sample it with, its
    steering vector or None)."""

    def __init__(
        self,
        model,
        pad_id: int | None,
        *,
        site: str,
        positions: str,
        rows: Mapping[int, tuple[int, np.ndarray | HeadAblation | None]],
    ) -> None:
        super().__init__(model, pad_id)
        self.site, self.positions, self.rows = site, positions, rows

    def generate(self, requests: Sequence, decoding, observer=None):
        import torch

        from hooks.interventions import Steer
        from hooks.sites import d_model

        unknown = [r.seed for r in requests if r.seed not in self.rows]
        if unknown:
            raise InputError(
                f"the steering engine got {len(unknown)} request(s) of no steering condition; "
                "it runs only the rows of the run_steering call that made it"
            )
        own = [self.rows[r.seed] for r in requests]
        requests = [replace(r, seed=seed) for r, (seed, _) in zip(requests, own)]
        steered = [v if isinstance(v, np.ndarray) else None for _, v in own]
        ablated = [v if isinstance(v, HeadAblation) else None for _, v in own]
        with ExitStack() as stack:
            if any(v is not None for v in steered):
                dtype = next(self.model.parameters()).dtype
                zero = np.zeros(d_model(self.model))
                vectors = np.stack([zero if v is None else v for v in steered])
                vectors = torch.as_tensor(vectors, dtype=dtype)
                stack.enter_context(Steer(self.model, self.site, vectors, positions=self.positions))
            if any(a is not None for a in ablated):
                stack.enter_context(self._ablate(ablated))
            return super().generate(requests, decoding, observer)

    def _ablate(self, rows: Sequence[HeadAblation | None]):
        """One ``Ablate`` for the batch: per head, each row's dose (0 where it is not ablated)."""
        import torch

        from hooks.ablation import Ablate

        sites = sorted({s for a in rows if a is not None for s in a.sites})
        doses = {
            s: torch.tensor([a.dose if a is not None and s in a.sites else 0.0 for a in rows])
            for s in sites
        }
        means = {}
        for a in rows:
            if a is not None and a.means is not None:
                means |= {s: torch.as_tensor(m) for s, m in a.means.items()}
        return Ablate(self.model, doses, means=means or None, positions=self.positions)
