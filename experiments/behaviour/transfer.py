"""Negative Transfer: a distilled student against its own pre-distillation baseline.

- accuracy: ``acc_*`` = mean over shared items of the item's share of correct samples; the
  McNemar test (statsmodels, exact binomial) pairs items, an item counting as solved when most
  of its samples are correct (``majority_correct``); ``n_b`` = student-only solved items,
  ``n_c`` = baseline-only solved items;
- alignment: r of each model's cost with human cost on the shared items and Steiger's test of
  the difference (``p_r``); pooled rows (``__pooled__``) use task-centred costs as in compare.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.contingency_tables import mcnemar

from experiments.behaviour.compare import POOLED, compare_on, task_slices
from experiments.behaviour.costs import paired

TRANSFER_COLUMNS = [
    "student",
    "baseline",
    "task",
    "n",
    "acc_student",
    "acc_baseline",
    "n_b",
    "n_c",
    "p_mcnemar",
    "r_student",
    "r_baseline",
    "p_r",
    "reason",
]


def mcnemar_p(solved_a: np.ndarray, solved_b: np.ndarray) -> tuple[int, int, float]:
    """(b, c, exact two-sided McNemar p) for paired binary outcomes; b = a only, c = b only."""
    a, b = np.asarray(solved_a, bool), np.asarray(solved_b, bool)
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    return table[0][1], table[1][0], float(mcnemar(table, exact=True).pvalue)


def _row(
    frame: pd.DataFrame, cost_a: np.ndarray, cost_b: np.ndarray, human: np.ndarray, n_eff: int
) -> dict:
    n_b, n_c, p = mcnemar_p(frame["majority_correct_a"], frame["majority_correct_b"])
    align = compare_on(cost_a, cost_b, human, n_eff=n_eff, n_boot=0, rng=np.random.default_rng(0))
    return {
        "n": len(frame),
        "acc_student": frame["accuracy_a"].mean(),
        "acc_baseline": frame["accuracy_b"].mean(),
        "n_b": n_b,
        "n_c": n_c,
        "p_mcnemar": p,
        "r_student": align["r_a"],
        "r_baseline": align["r_b"],
        "p_r": align["p"],
        "reason": align["reason"],
    }


def transfer_table(costs: pd.DataFrame, pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """Per-task and pooled transfer rows for every (student, baseline) pair."""
    rows = []
    for student, baseline in pairs:
        both = paired(costs, student, baseline)
        if both.empty:
            rows.append(
                {
                    "student": student,
                    "baseline": baseline,
                    "task": POOLED,
                    "n": 0,
                    "reason": "no overlapping items",
                }
            )
            continue
        rows += [
            {"student": student, "baseline": baseline, "task": task, **_row(*piece)}
            for task, *piece in task_slices(both)
        ]
    return pd.DataFrame(rows, columns=TRANSFER_COLUMNS)
