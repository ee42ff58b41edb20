"""Figures of the behavioural analysis (each saved as PNG and SVG):

- ``cost_vs_human.*``: model cost vs human cost (log RT) per task (columns) and model (rows),
  with the OLS fit and the within-task r;
- ``alignment_by_role.*``: within-task r's (dots) and r-bar with its 95% CI (bar) per model,
  models grouped and coloured by role;
- ``inflation.*``: student vs reference mean reasoning tokens per item (log-log), with y = x and
  y = ratio_gmean * x, one panel per (student, reference) pair.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from experiments.figures import save_figure, subplots

ROLE_COLOURS = {
    "teacher": "tab:blue",
    "student": "tab:red",
    "baseline": "tab:green",
    "": "tab:gray",
}


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    return save_figure(fig, out_dir / f"{name}.png", out_dir / f"{name}.svg")


def cost_vs_human(costs: pd.DataFrame, alignment: pd.DataFrame, out_dir: Path) -> list[Path]:
    models, tasks = sorted(costs["model"].unique()), sorted(costs["task"].unique())
    fig, axes = subplots(
        len(models),
        len(tasks),
        figsize=(3 * len(tasks), 2.6 * len(models)),
        squeeze=False,
        layout="constrained",
    )
    r_of = alignment.set_index(["model", "task"])["r"]
    for i, m in enumerate(models):
        for j, t in enumerate(tasks):
            ax = axes[i, j]
            d = costs[(costs["model"] == m) & (costs["task"] == t)]
            ax.scatter(d["human_cost"], d["cost"], s=8, alpha=0.6)
            if len(d) >= 2 and np.ptp(d["human_cost"]) > 0:
                b, a = np.polyfit(d["human_cost"], d["cost"], 1)
                xs = np.linspace(d["human_cost"].min(), d["human_cost"].max(), 2)
                ax.plot(xs, a + b * xs, color="k", lw=1)
            ax.set_title(f"{m} | {t}\nr = {r_of.get((m, t), np.nan):.2f}", fontsize=8)
            ax.set_xlabel("human cost log(RT s)", fontsize=7)
            ax.set_ylabel("model cost log(1+tokens)", fontsize=7)
    paths = _save(fig, out_dir, "cost_vs_human")
    return paths


def alignment_by_role(alignment: pd.DataFrame, roles: dict[str, str], out_dir: Path) -> list[Path]:
    order = {"teacher": 0, "student": 1, "baseline": 2}
    models = sorted(alignment["model"].unique(), key=lambda m: (order.get(roles.get(m, ""), 3), m))
    fig, ax = subplots(figsize=(1.2 + 0.9 * len(models), 3.5), layout="constrained")
    for x, m in enumerate(models):
        colour = ROLE_COLOURS[roles.get(m, "")]
        w = alignment[(alignment["model"] == m) & (alignment["level"] == "within")]
        ax.scatter(np.full(len(w), x), w["r"], s=10, color=colour, alpha=0.5)
        mean = alignment[(alignment["model"] == m) & (alignment["level"] == "mean")].iloc[0]
        err = [[mean["r"] - mean["r_lo"]], [mean["r_hi"] - mean["r"]]]
        ax.errorbar(
            [x], [mean["r"]], yerr=err, fmt="s", color=colour, capsize=4, label=roles.get(m) or None
        )
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(range(len(models)), [f"{m}\n({roles.get(m, '-')})" for m in models], fontsize=7)
    ax.set_ylabel("r(model cost, human cost)")
    handles, labels = ax.get_legend_handles_labels()
    if labels:
        uniq = dict(zip(labels, handles, strict=True))
        ax.legend(uniq.values(), uniq.keys(), fontsize=7)
    paths = _save(fig, out_dir, "alignment_by_role")
    return paths


def inflation_plot(costs: pd.DataFrame, inflation: pd.DataFrame, out_dir: Path) -> list[Path]:
    from matplotlib.ticker import NullFormatter

    pooled = inflation[inflation["task"] == "__pooled__"]
    if pooled.empty:
        return []
    fig, axes = subplots(
        1, len(pooled), figsize=(3.5 * len(pooled), 3.3), squeeze=False, layout="constrained"
    )
    tokens = costs.pivot_table(index="item_id", columns="model", values="mean_tokens")
    for ax, (_, row) in zip(axes[0], pooled.iterrows(), strict=True):
        d = tokens[[row["reference"], row["student"]]].dropna()
        d = d[(d > 0).all(axis=1)]
        ax.scatter(d[row["reference"]], d[row["student"]], s=8, alpha=0.6)
        if len(d):
            xs = np.geomspace(d[row["reference"]].min(), d[row["reference"]].max(), 2)
            ax.plot(xs, xs, "k:", lw=1, label="y = x")
            if np.isfinite(row["ratio_gmean"]):
                ax.plot(
                    xs, row["ratio_gmean"] * xs, "r-", lw=1, label=f"y = {row['ratio_gmean']:.2f} x"
                )
            ax.set_xscale("log")
            ax.set_yscale("log")
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_minor_formatter(NullFormatter())
            ax.legend(fontsize=7)
        ax.set_xlabel(f"{row['reference']} mean tokens", fontsize=8)
        ax.set_ylabel(f"{row['student']} mean tokens", fontsize=8)
    paths = _save(fig, out_dir, "inflation")
    return paths
