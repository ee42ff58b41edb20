"""Dose-response figure of a steering run (saved as PNG and SVG).

``dose_response.*``: one panel per model; in each, mean log(1 + reasoning tokens) over items vs
alpha (units of the residual norm at the site), one line per direction with its 95% bootstrap band
over items. Random-direction controls (names starting ``random``) are drawn grey and dashed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.errors import InputError
from experiments.figures import save_figure, subplots


def plot_dose_response(
    dose: pd.DataFrame,
    out_dir: str | Path,
    *,
    name: str = "dose_response",
    title: str | None = None,
) -> list[Path]:
    """Write ``{name}.png`` and ``{name}.svg`` from a ``dose_response`` table; returns the paths."""

    import matplotlib

    if len(dose) == 0:
        raise InputError("the dose-response table is empty; nothing to plot")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    models = list(dict.fromkeys(dose["model"]))
    fig, axes = subplots(1, len(models), figsize=(5 * len(models), 4), squeeze=False, sharey=True)
    for ax, model in zip(axes[0], models):
        frame = dose[dose["model"] == model]
        colours = iter(matplotlib.rcParams["axes.prop_cycle"].by_key()["color"])
        for direction, d in frame.groupby("direction", sort=False):
            d = d.sort_values("alpha")
            control = str(direction).startswith("random")
            style = dict(color="0.6", ls="--", lw=1) if control else dict(color=next(colours), lw=2)
            ax.plot(d["alpha"], d["mean_log_tokens"], marker="o", ms=3, label=direction, **style)
            ax.fill_between(
                d["alpha"], d["lo"], d["hi"], color=style["color"], alpha=0.15 if control else 0.25
            )
        ax.axvline(0, color="k", lw=0.5)
        ax.set(
            title=model,
            xlabel="alpha (x mean residual norm)",
            ylabel="mean log(1 + reasoning tokens)",
        )
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, out_dir / f"{name}.png", out_dir / f"{name}.svg")
