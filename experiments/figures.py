"""The one way handan makes and saves a figure.

Figures are ``matplotlib.figure.Figure`` objects made without pyplot, so no library call ever
selects or switches the user's matplotlib backend (a notebook keeps its own) and no figure is left
open in pyplot's registry. Every figure is saved at one resolution.
"""

from __future__ import annotations

from pathlib import Path

DPI = 110


def subplots(
    nrows: int = 1,
    ncols: int = 1,
    *,
    figsize: tuple[float, float] | None = None,
    layout: str | None = None,
    **kwargs,
):
    """``(figure, axes)`` like ``pyplot.subplots``, without touching pyplot or the backend."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save_figure(fig, *paths: str | Path) -> list[Path]:
    """Write ``fig`` to each path (format from the suffix, e.g. ``.png`` and ``.svg``)."""
    written = []
    for path in map(Path, paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI)
        written.append(path)
    return written
