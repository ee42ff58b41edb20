"""Relative effort, effort-allocation KL ("Cargo Cult") and RSA difficulty fingerprints.

- relative effort of an item for a model = its mean reasoning tokens / the teacher's mean
  reasoning tokens over the task's shared items (1 = the teacher's average length);
- allocation distribution of a model over a task's items: p(i) = (1 + tokens_i) / sum_j
  (1 + tokens_j) (mean tokens per item; the +1 keeps p > 0). ``kl_from_teacher`` =
  KL(p_teacher || p_model) in nats (scipy.stats.entropy): 0 when the model spreads its effort
  over items in the teacher's proportions, whatever its total length; pooled rows average the
  per-task KLs;
- fingerprint of a model: its item costs z-scored within each task, concatenated over tasks
  (``human`` is the same for human cost); ``fingerprints.csv`` holds the model x model Pearson
  r of fingerprints on shared items, in long form (pivot on model_a, model_b for the matrix).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from experiments.behaviour.compare import POOLED
from experiments.behaviour.costs import paired

EFFORT_COLUMNS = [
    "model",
    "role",
    "teacher",
    "task",
    "n",
    "mean_rel_effort",
    "median_rel_effort",
    "kl_from_teacher",
    "reason",
]
FINGERPRINT_COLUMNS = ["model_a", "model_b", "n", "r"]
HUMAN = "human"


def allocation_kl(tokens_teacher: np.ndarray, tokens_model: np.ndarray) -> float:
    """KL(p_teacher || p_model) of the (1 + tokens) allocation distributions, in nats."""
    return float(
        stats.entropy(1 + np.asarray(tokens_teacher, float), 1 + np.asarray(tokens_model, float))
    )


def effort_table(costs: pd.DataFrame, triples: list[dict]) -> pd.DataFrame:
    """Rows per (triple member, task) and pooled, each against the triple's teacher."""
    rows, seen = [], set()
    for triple in triples:
        teacher = triple["teacher"]
        for role, model in triple.items():
            if (model, teacher) in seen:
                continue
            seen.add((model, teacher))
            both = paired(costs, model, teacher)
            rel_all, kls = [], []
            for task, tb in both.groupby("task", sort=True):
                base = tb["mean_tokens_b"].mean()
                row = {
                    "model": model,
                    "role": role,
                    "teacher": teacher,
                    "task": task,
                    "n": len(tb),
                    "reason": "",
                }
                if base == 0:
                    row["reason"] = "teacher used 0 reasoning tokens on every item; undefined"
                else:
                    rel = tb["mean_tokens_a"].to_numpy(float) / base
                    kl = allocation_kl(tb["mean_tokens_b"], tb["mean_tokens_a"])
                    rel_all.append(rel)
                    kls.append(kl)
                    row.update(
                        mean_rel_effort=rel.mean(),
                        median_rel_effort=np.median(rel),
                        kl_from_teacher=kl,
                    )
                rows.append(row)
            row = {
                "model": model,
                "role": role,
                "teacher": teacher,
                "task": POOLED,
                "n": len(both),
                "reason": "" if rel_all else "no task with defined effort",
            }
            if rel_all:
                rel = np.concatenate(rel_all)
                row.update(
                    mean_rel_effort=rel.mean(),
                    median_rel_effort=np.median(rel),
                    kl_from_teacher=float(np.mean(kls)),
                )
            rows.append(row)
    return pd.DataFrame(rows, columns=EFFORT_COLUMNS)


def fingerprints(costs: pd.DataFrame) -> pd.DataFrame:
    """Model x model (and ``human``) correlation of within-task z-scored costs."""

    def zscore(frame: pd.DataFrame, col: str) -> pd.Series:
        g = frame.groupby("task")[col]
        with np.errstate(invalid="ignore", divide="ignore"):
            return (frame[col] - g.transform("mean")) / g.transform("std", ddof=0)

    prints = {
        m: pd.Series(zscore(mc, "cost").to_numpy(), index=mc["item_id"])
        for m, mc in costs.groupby("model", sort=True)
    }
    human = costs.drop_duplicates("item_id")
    prints[HUMAN] = pd.Series(zscore(human, "human_cost").to_numpy(), index=human["item_id"])
    names = list(prints)
    rows = []
    for a in names:
        for b in names:
            joined = pd.concat([prints[a], prints[b]], axis=1, join="inner").dropna()
            r = (
                float(np.corrcoef(joined.iloc[:, 0], joined.iloc[:, 1])[0, 1])
                if len(joined) >= 3
                else np.nan
            )
            rows.append({"model_a": a, "model_b": b, "n": len(joined), "r": r})
    return pd.DataFrame(rows, columns=FINGERPRINT_COLUMNS)
