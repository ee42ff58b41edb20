"""What the organism's models learn from before RL and distillation: (prompt, response) pairs.

**Teacher warm start** — every training item twice, once with its full and once with its short
worked solution (``task.py``), inside the think delimiters::

    <think>\\n{one line per step}</think>\\nAnswer: {answer}

**Baseline (the pre-distillation base model)** — decided before any model was trained on it, and
not changed after: the *same* worked solutions, every training item with its full and its short
solution, written as plain text before the final answer, with no think delimiters::

    {one line per step}Answer: {answer}

trained by SFT only (the optimiser settings of the teacher's warm start; no RL, no reward, no
length term). Reasons: (1) a base model such as Qwen2.5-Math or Llama-3.1 writes a chain of
thought because it imitated worked solutions in its pretraining data, which show a procedure at
varying levels of detail, chosen by their authors and not by a reward on length — the full and
the short solution are the two levels here, in equal shares on every item; (2) the teacher's warm
start sees exactly the same solutions, so what the teacher does beyond the baseline comes from
its RL stage (and its larger shape), and the student-vs-baseline contrast measures distillation
alone; (3) the baseline's accounting is the base-model rule of ``hooks.accounting`` — reasoning
is everything before the last ``Answer:`` — as for the paper's baselines.

**Student** — a copy of the baseline, SFT on the teacher's sampled correct traces (``train.py``),
which carry the think delimiters.

Each line of a solution ends in ``\\n``; a short solution with no step gives ``<think>\\n</think>``
(teacher) or just ``Answer: …`` (baseline). The trainers append the ``<|end|>`` token.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def steps_text(steps: Sequence[str]) -> str:
    return "".join(line + "\n" for line in steps)


def teacher_response(steps: Sequence[str], answer: str) -> str:
    """A worked solution inside think delimiters, then the answer."""
    return f"<think>\n{steps_text(steps)}</think>\nAnswer: {answer}"


def baseline_response(steps: Sequence[str], answer: str) -> str:
    """A worked solution in plain text, then the answer."""
    return f"{steps_text(steps)}Answer: {answer}"


def _pairs(items: pd.DataFrame, respond) -> list[tuple[str, str]]:
    return [
        (row.prompt, respond(steps, row.answer))
        for row in items.itertuples()
        for steps in (row.steps_full, row.steps_short)
    ]


def teacher_corpus(items: pd.DataFrame) -> list[tuple[str, str]]:
    """The teacher's warm-start pairs: full and short solution of every item, delimited."""
    return _pairs(items, teacher_response)


def baseline_corpus(items: pd.DataFrame) -> list[tuple[str, str]]:
    """The baseline's pairs: the same solutions without think delimiters."""
    return _pairs(items, baseline_response)
