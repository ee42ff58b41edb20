"""Figures for probe sweeps (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.errors import InputError
from experiments.figures import save_figure, subplots


def plot_depth_profile(table: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    """Score vs relative depth, one line per (model, position) with its bootstrap band (over
    items, the fitted probes held fixed: descriptive, narrower than a refit would give) and the
    permutation-null mean as a dashed line. ``table``: sweep rows with a ``model`` column
    (optional)."""

    data = table[table["depth"].notna()].copy()
    if data.empty:
        raise InputError("no rows with a layer/depth to plot; sites must end in '.<layer>'")
    if "model" not in data:
        data["model"] = ""
    fig, ax = subplots(figsize=(6.5, 4))
    for (model, position), rows in data.groupby(["model", "position"], sort=True):
        rows = rows.sort_values("depth")
        label = " · ".join(str(x) for x in (model, position) if x)
        (line,) = ax.plot(rows["depth"], rows["score"], marker="o", ms=3, label=label or "probe")
        ax.fill_between(
            rows["depth"], rows["score_lo"], rows["score_hi"], color=line.get_color(), alpha=0.2
        )
        if rows["null_mean"].notna().any():
            ax.plot(rows["depth"], rows["null_mean"], ls="--", color=line.get_color(), lw=1)
    ax.axhline(0.5 if (data["metric"] == "auroc").all() else 0.0, color="grey", lw=0.8)
    ax.set_xlabel("relative depth (layer / (n_layers - 1))")
    # the band holds the fitted probes fixed (descriptive); the report's CIs are best_site.csv's
    ax.set_ylabel(str(data["metric"].iloc[0]) + " (band: item bootstrap, fits fixed)")
    ax.plot([], [], ls="--", color="grey", lw=1, label="permutation-null mean")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)[0]
