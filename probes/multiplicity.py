"""Multiplicity adjustment across a family of probe tests (Holm, 1979: controls the family-wise
error rate under any dependence between the tests, as the probes of one study have)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests


def holm(p: pd.Series | np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values of ``p`` (NaN entries stay NaN and are not counted in the family)."""
    p = np.asarray(p, dtype=float)
    out = np.full(len(p), np.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = multipletests(p[finite], method="holm")[1]
    return out
