"""Batched, left-padded, KV-cached sampling with an optional per-forward observer.

One forward per generated token, as in ``model.generate``; left padding with position ids taken
from the attention mask, so a padded row computes what the same prompt computes alone. The observer
(e.g. ``hooks.capture.Capture``) is called after every forward with the tokens that were fed, which
is how activations are captured while the model generates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor

from experiments.errors import InputError


class ForwardObserver(Protocol):
    def on_forward(self, step: int, fed: Tensor, active: Tensor) -> None:
        """``step`` 0 is the prefill (``fed`` = padded prompts [B, L]); step s ≥ 1 fed the
        (s-1)-th generated token of each row (``fed`` [B, 1]); ``active`` [B] marks rows that had
        not finished before this forward. When the budget ends the batch, a last forward
        (step ``max_new_tokens``) feeds the final tokens, so it is observed too."""


def encode_prompts(
    tokenizer,
    prompts: Sequence[str],
    *,
    chat_template: bool = True,
    system_prompt: str | None = None,
    template_kwargs: dict | None = None,
) -> list[list[int]]:
    """Token ids of each prompt: through the tokenizer's chat template when it has one and
    ``chat_template`` is set (special tokens come from the template), else the raw text with the
    tokenizer's own special tokens."""
    out = []
    use_template = chat_template and getattr(tokenizer, "chat_template", None)
    for prompt in prompts:
        if use_template:
            messages = [{"role": "user", "content": prompt}]
            if system_prompt:
                messages.insert(0, {"role": "system", "content": system_prompt})
            text = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False, **(template_kwargs or {})
            )
            out.append(tokenizer.encode(text, add_special_tokens=False))
        else:
            out.append(tokenizer.encode(prompt, add_special_tokens=True))
    return out


def eos_token_ids(model, tokenizer) -> list[int]:
    """Every id that ends generation: the tokenizer's EOS plus the model's generation config."""
    ids = set()
    for source in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif source:
            ids.update(int(i) for i in source)
    if not ids:
        raise InputError(
            "the model and tokenizer declare no EOS token; generation could never stop"
        )
    return sorted(ids)


def position_ids(mask: Tensor) -> Tensor:
    """Position ids of a left-padded batch: count real tokens only, so a padded row sees the same
    positions as its prompt alone (pads get 0; they are masked out anyway)."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def left_pad(
    prompt_ids: Sequence[Sequence[int]], pad_id: int, device
) -> tuple[Tensor, Tensor, Tensor]:
    """(input_ids, attention_mask, position_ids), each [B, L], left-padded."""
    width = max(len(p) for p in prompt_ids)
    ids = torch.full((len(prompt_ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompt_ids), width), dtype=torch.long)
    for i, p in enumerate(prompt_ids):
        ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
        mask[i, width - len(p) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    return ids, mask, position_ids(mask)


def warp(
    logits: Tensor, temperature: float, top_p: float, top_k: int = 0, min_p: float = 0.0
) -> Tensor:
    """Sampling logits after HF's warpers, in HF's order: temperature, top-k, top-p, min-p
    (``top_k`` 0 and ``min_p`` 0 switch those off); removed tokens get -inf."""
    logits = logits.float() / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(-1, descending=False)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum <= 1 - top_p
        drop[..., -1] = False
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    if min_p > 0:
        probs = logits.softmax(-1)
        logits = logits.masked_fill(probs < min_p * probs.amax(-1, keepdim=True), float("-inf"))
    return logits


def sample_next(
    logits: Tensor,
    temperature: float,
    top_p: float,
    generator: torch.Generator | None,
    *,
    top_k: int = 0,
    min_p: float = 0.0,
) -> Tensor:
    """Next token per row: greedy at temperature 0, else a draw from :func:`warp`'s logits."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = warp(logits, temperature, top_p, top_k, min_p).softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _cache_kwarg(model) -> str:
    """transformers ≥ 5.2x names the KV cache argument ``cache``; earlier 5.x ``past_key_values``."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.inference_mode()
def generate_batch(
    model,
    prompt_ids: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos_ids: Sequence[int],
    pad_id: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    min_p: float = 0.0,
    generator: torch.Generator | None = None,
    observer: ForwardObserver | None = None,
) -> list[list[int]]:
    """Generated ids per row (ending with the EOS if the row produced one)."""
    from transformers import DynamicCache

    device = next(model.parameters()).device
    ids, mask, pos = left_pad(prompt_ids, pad_id, device)
    batch = ids.shape[0]
    cache = DynamicCache(config=model.config)
    cache_arg = _cache_kwarg(model)
    eos = torch.tensor(list(eos_ids), device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    out = torch.empty((batch, 0), dtype=torch.long, device=device)
    fed = ids
    # with an observer, rows the budget cut get one more forward: their last token is fed too,
    # so every generated token that is not an EOS has activations (think_close, step_K at the end)
    for step in range(max_new_tokens + (observer is not None)):
        logits = model(
            input_ids=fed,
            attention_mask=mask,
            position_ids=pos,
            use_cache=True,
            logits_to_keep=1,
            **{cache_arg: cache},
        ).logits[:, -1]
        if observer is not None:
            observer.on_forward(step, fed, ~done)
        if step == max_new_tokens:
            break
        nxt = sample_next(logits, temperature, top_p, generator, top_k=top_k, min_p=min_p)
        nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
        out = torch.cat([out, nxt[:, None]], dim=1)
        done = done | torch.isin(nxt, eos)
        if bool(done.all()) or (observer is None and step == max_new_tokens - 1):
            break
        fed = nxt[:, None]
        mask = torch.cat([mask, (~done).long()[:, None]], dim=1)
        pos = pos[:, -1:] + 1
    stop = set(eos_ids)
    rows = []
    for row in out.tolist():
        cut = next((j + 1 for j, t in enumerate(row) if t in stop), len(row))
        rows.append(row[:cut])
    return rows
