"""Reinforcement learning for the teacher: REINFORCE with a group-mean baseline (GRPO-style).

Each step draws ``prompts_per_step`` items (a ``torch.Generator``), samples ``group_size``
responses per item from the current policy (``model.generate`` with KV cache, temperature
``temperature``, no top-k/top-p), and scores each response with

    reward = 1[correct] - token_cost * reasoning_tokens

(``reasoning_tokens`` as in ``sampling.score``; a response cut at ``max_new_tokens`` is not
correct and pays for every reasoning token it wrote). The advantage of a response is its reward
minus the mean reward of its group (same prompt), not divided by the group's standard deviation
(as in Dr. GRPO: dividing would blow up tiny length differences within all-correct groups). One
on-policy gradient step per batch, so the importance ratio is 1 and no clipping is needed; the loss
is ``-mean_i(A_i * sum_t log pi(y_it))`` over the response tokens including ``<|end|>``. No KL
penalty to the SFT reference: the token cost is the only pressure besides correctness, and the
logged accuracy shows whether correctness holds. AdamW, constant learning rate, gradients clipped
at norm 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from experiments.errors import InputError
from experiments.models.organism.sampling import chat_prompt, generate, score


@dataclass(frozen=True)
class RLConfig:
    """Settings of the RL stage; ``token_cost`` is the reward lost per reasoning token."""

    steps: int
    prompts_per_step: int
    group_size: int
    lr: float
    token_cost: float
    temperature: float = 1.0
    max_new_tokens: int = 96


def sequence_logprob(
    model: PreTrainedModel,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    new_ids: torch.Tensor,
    new_mask: torch.Tensor,
) -> torch.Tensor:
    """Sum of log-probabilities of the ``new_ids`` (where ``new_mask``) given left-padded
    prompts; position ids follow the attention mask so padding changes nothing."""
    ids = torch.cat([prompt_ids, new_ids], dim=1)
    mask = torch.cat([prompt_mask, new_mask], dim=1)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    logits = logits[:, prompt_ids.shape[1] - 1 : -1]
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, new_ids.unsqueeze(-1)).squeeze(-1)
    return (logp * new_mask).sum(1)


def train_rl(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    answers: Sequence[str],
    tasks: Sequence[str],
    config: RLConfig,
    generator: torch.Generator,
    log: Callable[[int, dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` in place on items (``prompts``, their ``answers`` and ``tasks``); returns
    per step the mean reward, accuracy and reasoning tokens of the sampled responses (before that
    step's update) and the loss."""
    if not (len(prompts) == len(answers) == len(tasks)) or not prompts:
        raise InputError("RL needs as many answers and tasks as prompts, and at least one prompt")
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    pad, history = tokenizer.pad_token_id, []
    for step in range(config.steps):
        pick = torch.randperm(len(prompts), generator=generator)[: config.prompts_per_step].tolist()
        batch_prompts = [prompts[i] for i in pick for _ in range(config.group_size)]
        batch_answers = [answers[i] for i in pick for _ in range(config.group_size)]
        batch_tasks = [tasks[i] for i in pick for _ in range(config.group_size)]
        new = generate(
            model,
            tokenizer,
            batch_prompts,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            batch_size=len(batch_prompts),
        )
        scored = [
            score(tokenizer, ids, ans, task)
            for ids, ans, task in zip(new, batch_answers, batch_tasks)
        ]
        correct = torch.tensor([s.correct for s in scored], dtype=torch.float)
        length = torch.tensor([s.reasoning_tokens for s in scored], dtype=torch.float)
        reward = correct - config.token_cost * length
        grouped = reward.view(-1, config.group_size)
        advantage = (grouped - grouped.mean(1, keepdim=True)).view(-1)

        enc = tokenizer(
            [chat_prompt(tokenizer, p) for p in batch_prompts],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        )
        width = max(len(ids) for ids in new)
        new_ids = torch.full((len(new), width), pad, dtype=torch.long)
        new_mask = torch.zeros((len(new), width), dtype=torch.long)
        for i, ids in enumerate(new):
            new_ids[i, : len(ids)] = torch.tensor(ids)
            new_mask[i, : len(ids)] = 1
        model.train()
        dev = model.device
        logp = sequence_logprob(
            model,
            enc["input_ids"].to(dev),
            enc["attention_mask"].to(dev),
            new_ids.to(dev),
            new_mask.to(dev),
        )
        loss = -(advantage.to(dev) * logp).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        model.eval()
        row = {
            "reward": reward.mean().item(),
            "accuracy": correct.mean().item(),
            "reasoning_tokens": length.mean().item(),
            "loss": loss.item(),
        }
        history.append(row)
        if log is not None:
            log(step, row)
    return history
