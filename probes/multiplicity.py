"""Multiplicity adjustment across a family of probe tests.

Holm (1979) controls the family-wise error rate under any dependence between the tests; it is
used for the primary endpoint (best-layer contrasts) and for the best site vs its trivial
baseline. Benjamini & Hochberg (1995) controls the false discovery rate (under the positive
dependence that probes of one study share); it is used for the decodability screen of every
model x target, whose permutation p-values have a floor of 1 / (1 + n_permutations): Holm over
K such tests could not go below K / (1 + n_permutations) however strong every signal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests


def adjust(p: pd.Series | np.ndarray, method: str = "holm") -> np.ndarray:
    """Adjusted p-values of ``p`` by ``method`` ("holm" or "fdr_bh"); NaN entries stay NaN and
    are not counted in the family."""
    p = np.asarray(p, dtype=float)
    out = np.full(len(p), np.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = multipletests(p[finite], method=method)[1]
    return out


def holm_by(table: pd.DataFrame, family: str, p: str = "p") -> np.ndarray:
    """Holm-adjusted ``table[p]`` within each value of ``table[family]`` (one family each)."""
    out = np.full(len(table), np.nan)
    for _, rows in table.groupby(family):
        out[table.index.get_indexer(rows.index)] = adjust(rows[p])
    return out
