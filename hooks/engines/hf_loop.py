"""Batched, left-padded, KV-cached sampling with an optional per-forward observer.

One forward per generated token, as in ``model.generate``; left padding with position ids taken
from the attention mask, so a padded row computes what the same prompt computes alone. The observer
(e.g. ``hooks.capture.Capture``) is called after every forward with the tokens that were fed, which
is how activations are captured while the model generates.

Sampling is seeded per row (:class:`RowSeeds`): row r's draw at step j depends only on its own seed,
j and the logits, so a row samples the same tokens whatever else is in its batch (up to the
kernels' numerics, which padding can change in the last bits).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
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


def eos_token_ids(tokenizer, generation_config=None) -> list[int]:
    """Every id that ends generation: the tokenizer's EOS plus the generation config's (a model's
    ``generation_config``, or one read with ``GenerationConfig.from_pretrained``)."""
    ids = set()
    for source in (tokenizer.eos_token_id, getattr(generation_config, "eos_token_id", None)):
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


_M32 = 0xFFFFFFFF


def _mul32(x: Tensor, c: int) -> Tensor:
    """``x * c mod 2**32`` for int64 ``x`` in [0, 2**32), without int64 overflow."""
    hi, lo = c >> 16, c & 0xFFFF
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _M32


def _mix32(x: Tensor) -> Tensor:
    """murmur3's 32-bit finaliser (a bijection of [0, 2**32) with full avalanche)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x85EBCA6B)
    x = x ^ (x >> 13)
    x = _mul32(x, 0xC2B2AE35)
    return x ^ (x >> 16)


class RowSeeds:
    """Per-row random streams from 64-bit seeds, counter-based: the uniform of (row, step) is a
    hash of (seed, step), so no state is carried and nothing depends on the batch. One draw per
    row and step ([rows] int64 ops), no host round trip."""

    def __init__(self, seeds: Sequence[int], device) -> None:
        lo = torch.tensor([int(x) & _M32 for x in seeds], dtype=torch.long, device=device)
        hi = torch.tensor([(int(x) >> 32) & _M32 for x in seeds], dtype=torch.long, device=device)
        self.key = _mix32(lo ^ _mix32(hi ^ 0x9E3779B9))

    def uniform(self, step: int) -> Tensor:
        """[rows] float64 uniforms in (0, 1) for generation step ``step`` (42 random bits)."""
        steps = _mul32(torch.full_like(self.key, step + 1), 0x9E3779B1)
        a = _mix32(self.key ^ steps)
        b = _mix32(a ^ 0x7F4A7C15)
        return ((a >> 11) * 2.0**21 + (b >> 11) + 0.5).double() / 2.0**42


def sample_next(
    logits: Tensor,
    temperature: float,
    top_p: float,
    generator: torch.Generator | RowSeeds | None,
    *,
    top_k: int = 0,
    min_p: float = 0.0,
    step: int = 0,
) -> Tensor:
    """Next token per row: greedy at temperature 0, else a draw from :func:`warp`'s logits —
    ``torch.multinomial`` with one ``torch.Generator`` for the batch, or, with ``RowSeeds``, the
    inverse-CDF draw of each row's own uniform at ``step`` (the first token whose cumulative
    probability reaches it: an exact sample; a removed token has probability 0 and is never hit)."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = warp(logits, temperature, top_p, top_k, min_p).softmax(-1)
    if isinstance(generator, RowSeeds):
        cdf = probs.double().cumsum(-1)
        u = generator.uniform(step) * cdf[:, -1]
        return torch.searchsorted(cdf, u[:, None]).squeeze(-1).clamp(max=probs.shape[-1] - 1)
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
    max_new_tokens: int | Sequence[int],
    eos_ids: Sequence[int],
    pad_id: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    min_p: float = 0.0,
    generator: torch.Generator | RowSeeds | None = None,
    observer: ForwardObserver | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> list[list[int]]:
    """Generated ids per row (ending with the EOS if the row produced one). ``max_new_tokens`` is
    one budget for every row or one per row (a row cut by its budget stops there).

    ``progress(tokens, budget, running)``, if given, is called after every generated token:
    tokens generated so far by the rows still running, the largest budget of the batch, and how
    many rows are still running (for a per-token bar on long batches; one host sync per step)."""
    from transformers import DynamicCache

    device = next(model.parameters()).device
    ids, mask, pos = left_pad(prompt_ids, pad_id, device)
    batch = ids.shape[0]
    budgets = [max_new_tokens] * batch if isinstance(max_new_tokens, int) else max_new_tokens
    if len(budgets) != batch or min(budgets) < 1:
        raise InputError(f"need one budget >= 1 per row; got {list(budgets)} for {batch} rows")
    limit = torch.tensor(list(budgets), device=device)
    # a row's last real position; its padding after that stays there (masked), so rows that stop
    # early never index past the context of a model with learned position embeddings
    last_pos = pos[:, -1:] + limit[:, None]
    cache = DynamicCache(config=model.config)
    cache_arg = _cache_kwarg(model)
    eos = torch.tensor(list(eos_ids), device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    live = ~done  # the token fed next was really generated (the row was not done yet)
    count = torch.zeros(batch, dtype=torch.long, device=device)
    out = torch.empty((batch, 0), dtype=torch.long, device=device)
    fed, active, finished = ids, ~done, False
    # with an observer, rows the budget cut get one more forward: their last token is fed too,
    # so every generated token that is not an EOS has activations (think_close, step_K at the end)
    for step in itertools.count():
        if step > 0:
            active = live & ~torch.isin(fed[:, 0], eos)
            if finished and (observer is None or not bool(active.any())):
                break
        logits = model(
            input_ids=fed,
            attention_mask=mask,
            position_ids=pos,
            use_cache=True,
            logits_to_keep=1,
            **{cache_arg: cache},
        ).logits[:, -1]
        if observer is not None:
            observer.on_forward(step, fed, active)
        if finished:
            break
        nxt = sample_next(
            logits, temperature, top_p, generator, top_k=top_k, min_p=min_p, step=step
        )
        live = ~done
        nxt = torch.where(live, nxt, torch.full_like(nxt, pad_id))
        out = torch.cat([out, nxt[:, None]], dim=1)
        count = count + live.long()
        stopped = torch.isin(nxt, eos)
        done = done | stopped | (count >= limit)
        fed = nxt[:, None]
        mask = torch.cat([mask, (live & ~stopped).long()[:, None]], dim=1)
        pos = torch.minimum(pos[:, -1:] + 1, last_pos)
        finished = bool(done.all())
        if progress is not None:
            progress(step + 1, max(budgets), batch - int(done.sum()))
    return [row[:n] for row, n in zip(out.tolist(), count.tolist())]
