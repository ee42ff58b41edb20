"""Formatting shared by the report sections: numbers, CIs, markdown tables, optional CSVs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd


def _f(x: Any, nd: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _ci(row: pd.Series, est: str, lo: str, hi: str, nd: int = 2) -> str:
    return f"{_f(row[est], nd)} [{_f(row[lo], nd)}, {_f(row[hi], nd)}]"


def _table(header: list[str], rows) -> list[str]:
    """A markdown table: header, separator, one line per row (cells already formatted), blank line."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""]


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.exists() else None


#: share of traces cut at the budget above which a length statistic is flagged as biased
CENSORED_FLAG = 0.10


def _excludes_zero(lo: float, hi: float) -> bool:
    return not (math.isnan(lo) or math.isnan(hi)) and (lo > 0 or hi < 0)
