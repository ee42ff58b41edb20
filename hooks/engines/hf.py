"""The ``hf`` engine: handan's batched HF loop (``hooks.engines.hf_loop``) behind ``Engine``.

Requests are generated together as one left-padded batch; each row samples from its own seed
(``RowSeeds``) and stops at its own budget. It is the engine that takes an observer (online
capture, ``hooks.capture.Capture``) and runs inside interventions (``hooks.Steer``).
"""

from __future__ import annotations

from collections.abc import Sequence

from hooks.engines.base import Decoding, Engine, Generation, Request, finish_reason
from hooks.engines.hf_loop import RowSeeds, generate_batch


class HFEngine(Engine):
    """Runs ``model`` (an HF causal LM the caller owns); ``pad_id`` fills the left padding
    (None: the first EOS id, as for tokenizers without a pad token)."""

    name = "hf"
    captures = True

    def __init__(self, model, pad_id: int | None = None) -> None:
        self.model, self.pad_id = model, pad_id
        # per-token progress (tokens, budget, rows still running), see ``generate_batch``
        self.on_token = None

    @property
    def generation_config(self):
        return getattr(self.model, "generation_config", None)

    @property
    def version(self) -> str:
        import transformers

        return f"transformers {transformers.__version__}"

    def generate(
        self, requests: Sequence[Request], decoding: Decoding, observer=None
    ) -> list[Generation]:
        device = next(self.model.parameters()).device
        outs = generate_batch(
            self.model,
            [r.prompt_ids for r in requests],
            max_new_tokens=[r.max_new_tokens for r in requests],
            eos_ids=decoding.eos_ids,
            pad_id=decoding.eos_ids[0] if self.pad_id is None else self.pad_id,
            temperature=decoding.temperature,
            top_p=decoding.top_p,
            top_k=decoding.top_k,
            min_p=decoding.min_p,
            generator=RowSeeds([r.seed for r in requests], device),
            observer=observer,
            progress=self.on_token,
        )
        return [Generation(tuple(g), finish_reason(g, decoding.eos_ids)) for g in outs]
