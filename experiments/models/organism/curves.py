"""Training curves: a tidy log (``stage, step, metric, value, wall_s``) and its figure.

``wall_s`` is seconds since the stage started. Metrics: ``loss`` (SFT: nats per response token;
RL: the policy-gradient loss), ``lr``, and for RL ``reward``, ``accuracy`` and
``reasoning_tokens`` (means over the step's sampled responses).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from experiments.figures import save_figure, subplots


class CurveLog:
    """Collects per-step metrics of every stage."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []

    def stage(
        self, name: str, on_step: Callable[[], None] | None = None
    ) -> Callable[[int, dict[str, float]], None]:
        """A ``log(step, metrics)`` callback for one stage (``on_step`` runs after each step)."""
        start = time.perf_counter()

        def log(step: int, metrics: dict[str, float]) -> None:
            wall = time.perf_counter() - start
            self.rows.extend(
                {"stage": name, "step": step, "metric": k, "value": float(v), "wall_s": wall}
                for k, v in metrics.items()
            )
            if on_step is not None:
                on_step()

        return log

    def frame(self) -> pd.DataFrame:
        """The log as a table."""
        return pd.DataFrame(self.rows, columns=["stage", "step", "metric", "value", "wall_s"])


def plot_curves(curves: pd.DataFrame, path: Path) -> Path:
    """One panel per (stage, metric) except the learning rate, written as a PNG."""

    panels = [
        key for key, _ in curves[curves["metric"] != "lr"].groupby(["stage", "metric"], sort=False)
    ]
    fig, axes = subplots(1, len(panels), figsize=(3.2 * len(panels), 2.8), squeeze=False)
    for ax, (stage, metric) in zip(axes[0], panels):
        part = curves[(curves["stage"] == stage) & (curves["metric"] == metric)]
        ax.plot(part["step"], part["value"], lw=1)
        ax.set_title(f"{stage}: {metric}", fontsize=9)
        ax.set_xlabel("step")
    fig.tight_layout()
    return save_figure(fig, path)[0]
