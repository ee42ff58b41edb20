"""Human alignment under steering: within-task Pearson r of the steered item cost with log human
RT at each alpha, and whether steering moved it (Steiger's Z of r(alpha) vs r(0): dependent
correlations sharing the human variable)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.errors import InputError
from experiments.steering.analysis import item_means

ALIGNMENT_COLUMNS = [
    "model",
    "direction",
    "alpha",
    "task",
    "n",
    "r",
    "r_lo",
    "r_hi",
    "p",
    "r_change",
    "z_vs_0",
    "p_vs_0",
    "reason",
]


def human_alignment(steering: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Within-task Pearson r of item cost vs log(human_rt_s) at each alpha (Fisher-z CI), and
    whether it moved: ``r_change`` = r(alpha) - r(0), Steiger's Z / p for r(alpha) vs r(0) on the
    same items: ``ALIGNMENT_COLUMNS``. Items without a positive human RT are left out."""
    from experiments.behaviour.alignment import correlate
    from experiments.behaviour.compare import steiger_z

    if "human_rt_s" not in items.columns:
        raise InputError(
            "the items table has no human_rt_s column; human alignment needs human RTs"
        )
    human = items[["item_id", "human_rt_s"]].dropna()
    human = human[human["human_rt_s"] > 0].assign(
        log_rt=lambda f: np.log(f["human_rt_s"].astype(float))
    )
    means = item_means(steering).merge(human[["item_id", "log_rt"]], on="item_id")
    if "task" not in means:
        means["task"] = "all"
    rows = []
    for (model, direction, task), frame in means.groupby(
        ["model", "direction", "task"], sort=False
    ):
        wide = frame.pivot(index="item_id", columns="alpha", values="cost").dropna()
        rt = (
            frame.drop_duplicates("item_id")
            .set_index("item_id")
            .loc[wide.index, "log_rt"]
            .to_numpy(float)
        )
        base = wide[0.0].to_numpy(float) if 0.0 in wide.columns else None
        r0 = (
            correlate(base, rt, n_boot=0, rng=np.random.default_rng(0))["r"]
            if base is not None
            else np.nan
        )
        for alpha in wide.columns:
            cost = wide[alpha].to_numpy(float)
            row = correlate(cost, rt, n_boot=0, rng=np.random.default_rng(0))
            z = p_vs = np.nan
            if base is not None and alpha != 0 and not row["reason"] and np.isfinite(r0):
                r_kh = np.corrcoef(cost, base)[0, 1]
                z, p_vs = (float(v) for v in steiger_z(row["r"], r0, r_kh, len(cost)))
            rows.append(
                dict(
                    model=model,
                    direction=direction,
                    alpha=float(alpha),
                    task=task,
                    n=row["n"],
                    r=row["r"],
                    r_lo=row["r_lo"],
                    r_hi=row["r_hi"],
                    p=row["p"],
                    r_change=row["r"] - r0,
                    z_vs_0=z,
                    p_vs_0=p_vs,
                    reason=row["reason"],
                )
            )
    return pd.DataFrame(rows, columns=ALIGNMENT_COLUMNS)
