"""Per-item costs: the unit every behavioural measure is computed on.

Definitions (README, "Behavioural analysis"):
- model cost of an item = mean over its samples of ``log(1 + reasoning_tokens)`` (nats of tokens);
  censored samples (``finished_thinking`` False, cut at the budget) stay in at their budget value
  and are counted (``n_censored``);
- human cost of an item = ``log(human_rt_s)`` (log seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from experiments.contracts import validate_items, validate_traces
from experiments.errors import InputError

EXCLUSION_COLUMNS = ["stage", "model", "task", "reason", "n_items", "n_traces"]
COST_COLUMNS = [
    "model",
    "item_id",
    "task",
    "cost",
    "mean_tokens",
    "n_samples",
    "n_censored",
    "accuracy",
    "majority_correct",
    "human_cost",
]


@dataclass
class Exclusions:
    """What was left out of the analysis and why; becomes ``exclusions.csv``."""

    rows: list[dict] = field(default_factory=list)

    def add(
        self,
        stage: str,
        reason: str,
        *,
        model: str = "",
        task: str = "",
        n_items: int = 0,
        n_traces: int = 0,
    ) -> None:
        self.rows.append(
            {
                "stage": stage,
                "model": model,
                "task": task,
                "reason": reason,
                "n_items": int(n_items),
                "n_traces": int(n_traces),
            }
        )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=EXCLUSION_COLUMNS)


def prepare(
    items: pd.DataFrame, traces: pd.DataFrame, exclusions: Exclusions
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate both tables and drop what cannot enter the analysis, recording each drop.

    Dropped: items without a positive human RT (and their traces); traces whose item is not in
    the items table. A trace whose ``task`` disagrees with its item's task is an error."""
    items = validate_items(items)
    traces = validate_traces(traces)
    rt = items["human_rt_s"]
    no_rt = (rt.isna() | (rt <= 0)).to_numpy(dtype=bool)
    for task, n in items.loc[no_rt].groupby("task").size().items():
        exclusions.add(
            "items", "no positive human_rt_s (human cost undefined)", task=str(task), n_items=n
        )
    without_rt = set(items.loc[no_rt, "item_id"])
    items = items.loc[~no_rt].reset_index(drop=True)

    kept = traces["item_id"].isin(set(items["item_id"])).to_numpy(dtype=bool)
    reason = np.where(
        traces["item_id"].isin(without_rt), "item has no human RT", "item_id not in the items table"
    )
    dropped = traces.loc[~kept].assign(reason=reason[~kept])
    for (model, why), sub in dropped.groupby(["model", "reason"]):
        exclusions.add(
            "traces",
            str(why),
            model=str(model),
            n_items=sub["item_id"].nunique(),
            n_traces=len(sub),
        )
    traces = traces.loc[kept].reset_index(drop=True)

    item_task = traces["item_id"].map(items.set_index("item_id")["task"])
    clash = (traces["task"] != item_task).to_numpy(dtype=bool)
    if clash.any():
        bad = traces.loc[clash, ["model", "item_id", "task"]].head(3).to_dict("records")
        raise InputError(
            f"{int(clash.sum())} trace(s) name a task different from their item's task, "
            f"e.g. {bad}; regenerate the traces from this items table or fix the task column"
        )
    return items, traces


def item_costs(items: pd.DataFrame, traces: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, item): ``cost`` = mean log(1 + reasoning_tokens) over samples,
    ``mean_tokens`` = mean reasoning tokens, ``n_censored`` = samples cut at the budget,
    ``accuracy`` = share of correct samples, ``majority_correct`` = accuracy > 0.5,
    ``human_cost`` = log(human_rt_s). Inputs are the outputs of :func:`prepare`."""
    t = traces.assign(
        log_tokens=np.log1p(traces["reasoning_tokens"].to_numpy(dtype=float)),
        tokens=traces["reasoning_tokens"].astype(float),
        censored=~traces["finished_thinking"].astype(bool),
        correct_f=traces["correct"].astype(float),
    )
    out = t.groupby(["model", "item_id", "task"], as_index=False, observed=True).agg(
        cost=("log_tokens", "mean"),
        mean_tokens=("tokens", "mean"),
        n_samples=("tokens", "size"),
        n_censored=("censored", "sum"),
        accuracy=("correct_f", "mean"),
    )
    out["majority_correct"] = out["accuracy"] > 0.5
    human = np.log(items.set_index("item_id")["human_rt_s"].astype(float))
    out["human_cost"] = out["item_id"].map(human).astype(float)
    out["model"] = out["model"].astype(str)
    out["item_id"] = out["item_id"].astype(str)
    out["task"] = out["task"].astype(str)
    return out[COST_COLUMNS].sort_values(["model", "task", "item_id"]).reset_index(drop=True)


def paired(costs: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Items that models ``a`` and ``b`` both answered, side by side (suffixes ``_a``, ``_b``)."""
    cols = [
        "item_id",
        "cost",
        "mean_tokens",
        "accuracy",
        "majority_correct",
        "n_samples",
        "n_censored",
    ]
    left = costs.loc[costs["model"] == a, cols + ["task", "human_cost"]]
    right = costs.loc[costs["model"] == b, cols]
    return left.merge(right, on="item_id", suffixes=("_a", "_b"))
