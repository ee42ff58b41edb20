"""Supervised fine-tuning: next-token cross-entropy on the response tokens only.

An example is a (prompt, response) pair; the sequence is the chat-templated prompt, the response
and ``<|end|>``. Labels are -100 on the prompt and on padding, so the loss (mean over response
tokens in the batch, in nats per token) is the response's. Batches are drawn without replacement
from a per-epoch permutation of a ``torch.Generator``; AdamW with linear warm-up and cosine decay
to 10% of the peak learning rate; gradients clipped at norm 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from experiments.errors import InputError
from experiments.models.organism.sampling import chat_prompt


@dataclass(frozen=True)
class SFTConfig:
    """Optimisation settings of one SFT stage."""

    steps: int
    batch_size: int
    lr: float
    warmup: int = 10
    weight_decay: float = 0.01


def encode(
    tokenizer: PreTrainedTokenizerBase, pairs: Sequence[tuple[str, str]]
) -> list[tuple[list[int], int]]:
    """Token ids of ``prompt + response + <|end|>`` and the number of prompt tokens, per pair."""
    out = []
    for prompt, response in pairs:
        head = tokenizer(chat_prompt(tokenizer, prompt), add_special_tokens=False).input_ids
        tail = tokenizer(response, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
        out.append((head + tail, len(head)))
    return out


def collate(examples: Sequence[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and response-only ``labels``."""
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(examples):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
        mask[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay from 1 to 0.1."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))


def train_sft(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[tuple[str, str]],
    config: SFTConfig,
    generator: torch.Generator,
    log: Callable[[int, dict[str, float]], None] | None = None,
) -> list[float]:
    """Fine-tune ``model`` in place on ``pairs``; returns the training loss per step."""
    if not pairs:
        raise InputError("SFT needs at least one (prompt, response) pair; the data set is empty")
    examples = encode(tokenizer, pairs)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, config.steps, config.warmup)
    )
    model.train()
    order, cursor, losses = torch.empty(0, dtype=torch.long), 0, []
    for step in range(config.steps):
        if cursor + config.batch_size > len(order):
            order, cursor = torch.randperm(len(examples), generator=generator), 0
        take = order[cursor : cursor + config.batch_size].tolist()
        cursor += config.batch_size
        batch = collate([examples[i] for i in take], tokenizer.pad_token_id)
        batch = {k: v.to(model.device) for k, v in batch.items()}
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if log is not None:
            log(step, {"loss": losses[-1], "lr": schedule.get_last_lr()[0]})
    model.eval()
    return losses
