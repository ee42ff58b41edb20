"""Greedy evaluation of one organism model on items: accuracy and reasoning-length statistics.

Per task: accuracy, mean reasoning tokens and the Spearman correlation of reasoning tokens with
``feat_work_steps`` (the steps of the item's worked solution that need work; None where either
is constant); overall: accuracy, finished share, mean / sd / range of reasoning tokens; per item:
``correct`` and ``reasoning_tokens``. Reasoning tokens follow ``sampling.score`` (the think span,
or for the baseline everything before ``Answer:``).
"""

from __future__ import annotations

import pandas as pd
from scipy.stats import spearmanr
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from experiments.models.organism.sampling import generate, score

EVAL_MAX_NEW_TOKENS = 128


def _rho(part: pd.DataFrame) -> float | None:
    if part["reasoning_tokens"].nunique() < 2 or part["feat_work_steps"].nunique() < 2:
        return None
    return float(spearmanr(part["reasoning_tokens"], part["feat_work_steps"]).statistic)


def evaluate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    items: pd.DataFrame,
    *,
    delimited: bool,
) -> dict[str, object]:
    """Greedy accuracy and reasoning-token statistics of a model on ``items``."""
    new = generate(model, tokenizer, list(items["prompt"]), max_new_tokens=EVAL_MAX_NEW_TOKENS)
    scored = [
        score(tokenizer, ids, answer, task, delimited=delimited)
        for ids, answer, task in zip(new, items["answer"], items["task"])
    ]
    frame = items[["item_id", "task", "feat_work_steps"]].assign(
        correct=[s.correct for s in scored],
        reasoning_tokens=[s.reasoning_tokens for s in scored],
        finished_thinking=[s.finished_thinking for s in scored],
    )
    by_task = frame.groupby("task", sort=False)
    tokens = frame["reasoning_tokens"]
    return {
        "accuracy": {
            "all": float(frame["correct"].mean()),
            **by_task["correct"].mean().astype(float).to_dict(),
        },
        "finished_thinking": float(frame["finished_thinking"].mean()),
        "reasoning_tokens": {
            "mean": float(tokens.mean()),
            "sd": float(tokens.std(ddof=1)) if len(tokens) > 1 else None,
            "min": int(tokens.min()),
            "max": int(tokens.max()),
            "by_task": by_task["reasoning_tokens"].mean().astype(float).to_dict(),
            "spearman_feat_work_steps": {task: _rho(part) for task, part in by_task},
        },
        "by_item": {
            row.item_id: {
                "correct": bool(row.correct),
                "reasoning_tokens": int(row.reasoning_tokens),
            }
            for row in frame.itertuples()
        },
    }
