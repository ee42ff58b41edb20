"""Activations of the unsteered model at a site: what a direction is fitted on, and ``scale``.

``scale`` is the unit of alpha: the mean L2 norm of the residual stream at the site over the
positions where the vector is added (``hooks.steer_positions``), pooled over every such position
of every prompt — e.g. for ``prompt`` every prompt token, not only the last one, so ``alpha = 1``
adds a vector as long as a typical activation it is added to.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from experiments.errors import InputError
from experiments.models.specs import ModelSpec
from hooks.steer_positions import STEER_POSITIONS


def _encode(tokenizer, spec: ModelSpec, prompts: Sequence[str]) -> list[list[int]]:
    from hooks.engines.hf_loop import encode_prompts

    return encode_prompts(
        tokenizer,
        list(prompts),
        chat_template=spec.chat_template,
        system_prompt=spec.system_prompt,
        template_kwargs=spec.template_kwargs,
    )


def _site_forward(model, tokenizer, sequences: list[list[int]], site: str, batch_size: int):
    """Yield (batch start, activations [b, L, d] float64) per batch of left-padded
    ``sequences`` (position ids from the attention mask, as in generation)."""
    import torch

    from hooks.engines.hf_loop import left_pad
    from hooks.recorder import Recorder

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    with torch.inference_mode(), Recorder(model, [site]) as rec:
        for i in range(0, len(sequences), batch_size):
            x, mask, pos = left_pad(sequences[i : i + batch_size], pad, device)
            model(input_ids=x, attention_mask=mask, position_ids=pos)
            yield i, rec.activations[site].double().cpu().numpy()


def prompt_end_activations(
    model, tokenizer, spec: ModelSpec, prompts: Sequence[str], site: str, *, batch_size: int = 32
) -> np.ndarray:
    """Activations ``[n, d]`` (float32) of ``site`` at the last prompt token of each prompt."""
    ids = _encode(tokenizer, spec, prompts)
    out = [acts[:, -1] for _, acts in _site_forward(model, tokenizer, ids, site, batch_size)]
    return np.concatenate(out).astype(np.float32)


def injected_norm(
    model,
    tokenizer,
    spec: ModelSpec,
    prompts: Sequence[str],
    site: str,
    *,
    positions: str,
    continuations: Sequence[str] | None = None,
    batch_size: int = 32,
) -> float:
    """Mean L2 norm of ``site``'s unsteered activations over the positions a steering vector is
    added at (``positions``), pooled over every such token of every prompt. ``generated`` and
    ``all`` need ``continuations`` (one unsteered generated text per prompt, e.g. from the run's
    traces; re-encoded without special tokens and appended to its prompt)."""
    if positions not in STEER_POSITIONS:
        raise InputError(f"unknown steering positions {positions!r}; use one of {STEER_POSITIONS}")
    if not len(prompts):
        raise InputError("no prompts to measure the residual norm on")
    ids = _encode(tokenizer, spec, prompts)
    ends = [len(p) for p in ids]
    if positions in ("generated", "all"):
        if continuations is None or len(continuations) != len(ids):
            raise InputError(
                f"positions={positions!r} adds the vector at generated tokens, so its scale "
                "needs one unsteered continuation per prompt; pass them, or a numeric scale"
            )
        ids = [
            p + tokenizer.encode(str(c), add_special_tokens=False)
            for p, c in zip(ids, continuations)
        ]
    total, count = 0.0, 0
    for i, acts in _site_forward(model, tokenizer, ids, site, batch_size):
        norms = np.linalg.norm(acts, axis=-1)  # [b, L]
        width = norms.shape[1]
        for r in range(len(norms)):
            n_real, end = len(ids[i + r]), ends[i + r]
            start = width - n_real  # left padding
            lo, hi = {
                "prompt": (0, end),
                "prompt_end": (end - 1, end),
                "generated": (end, n_real),
                "all": (0, n_real),
            }[positions]
            kept = norms[r, start + lo : start + hi]
            total, count = total + float(kept.sum()), count + len(kept)
    if count == 0:
        raise InputError(f"no {positions} positions in these prompts/continuations to measure")
    return total / count
