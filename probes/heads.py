"""Probes per attention head: the head sweep's best heads, and teacher vs student head contrasts.

A head sweep is ``probes.store_sweep.sweep_store`` over a store's ``attn_z.{L}.{H}`` sites: each
head is one feature key (``d_head`` wide), probed with the same grouped nested CV, trivial
baselines, permutation null and bootstrap as a layer, and ``p_fwe`` is one max-T over every
layer x head x position — the family the best head is picked from.

Heads of two models are not matched one to one: independently trained (or distilled) models have
no head correspondence, and neither the number of heads nor of layers need agree. What
``compare_heads`` contrasts is, per position,

- ``best_head`` (the head family's primary endpoint): each model's best head picked on one half
  of the items and scored on the other (``probes.crossfit``), both ways, over the same halvings —
  ``probes.contrasts.compare``'s best-layer estimator run over heads, so a model with more heads
  gains nothing from the pick;
- ``depth`` (secondary): at each pre-registered relative depth, the best head of each model's
  layer nearest that depth (picked the same cross-fitted way within that layer): layers are
  matched by relative depth, heads within them by selection, never by index.

Measured (``benchmarks/head_contrast.py``, 100 replications, 300 items, signal 0.5 on one unit of
every head, 10 halvings): 4 layers x 4 heads of 32 vs the same shape (truth 0): bias -0.010 (MC
SE 0.004), coverage 0.990 (0.010), rejection at .05 0.050 (0.022); vs 3 layers x 4 heads of 24
(the organism student's shape; truth -0.024): bias -0.009 (0.004), coverage 0.970 (0.017). The
estimates are those of the earlier bootstrap CI's run (same seeds; only the CI changed, from
coverage 1.000 and rejection 0.010 at truth 0), measured with the normal quantile before the t
(which only widens); the -0.01 bias (2.5 MC SE) is one excursion shared by both rows (they
contrast the same replications of model a), not yet rerun on more. The pre-registered-depth rows
were not simulated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from probes.contrasts import PREREGISTERED_DEPTHS, compare, nearest_depth
from probes.crossfit import BASELINE_PREFIX, HalfScores
from probes.layer_sweep import head_of, layer_of, split_key

HEAD_KIND = "attn_z"


def is_head_site(site: str) -> bool:
    """True for a per-head ``attn_z.{L}.{H}`` site name."""
    return site.startswith(f"{HEAD_KIND}.") and np.isfinite(head_of(site))


def head_rows(table: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """The per-head rows of a sweep table with ``layer`` and ``head`` columns, best score first
    (the ``top`` best per model x target x position when given)."""
    rows = table[table["site"].map(is_head_site)].copy()
    rows["head"] = rows["site"].map(head_of)
    rows = rows.sort_values("score", ascending=False, kind="stable")
    keys = [c for c in ("model", "target", "position") if c in rows]
    if top is not None:
        rows = rows.groupby(keys, sort=False).head(top) if keys else rows.head(top)
    return rows.reset_index(drop=True)


def compare_heads(
    half_a: HalfScores,
    half_b: HalfScores,
    *,
    depths: Sequence[float] = PREREGISTERED_DEPTHS,
) -> pd.DataFrame:
    """Best-head (primary) and best-head-at-a-pre-registered-depth (secondary) differences a - b
    of two models' head ``half_scores`` on the same halving (see the module docstring). Columns as
    ``probes.contrasts.compare`` (``comparison`` = best_head | depth; ``site_a`` / ``site_b`` the
    modal picks)."""
    heads = [h.select([_is_head_key(k) for k in h.keys]) for h in (half_a, half_b)]
    rows = [compare(*heads, depths=()).assign(comparison="best_head")]
    for position in sorted(_positions(heads[0]) & _positions(heads[1])):
        at = [h.select([split_key(k)[1] == position for k in h.keys]) for h in heads]
        layers = [np.array([layer_of(split_key(k)[0]) for k in h.keys]) for h in at]
        seen = set()
        for q in depths:
            picks = [nearest_depth(h.depth, q) for h in at]
            if any(i is None for i in picks):
                continue
            pair = tuple(lay[i] for lay, i in zip(layers, picks, strict=True))
            if pair in seen:  # a depth that lands on layers already compared is the same test
                continue
            seen.add(pair)
            within = [h.select(lay == lay[i]) for h, lay, i in zip(at, layers, picks, strict=True)]
            rows.append(
                compare(*within, depths=()).assign(
                    comparison="depth", depth=float(q), endpoint="secondary"
                )
            )
    return pd.concat(rows, ignore_index=True)


def _is_head_key(key: str) -> bool:
    return not key.startswith(BASELINE_PREFIX) and is_head_site(split_key(key)[0])


def _positions(half: HalfScores) -> set[str]:
    return {split_key(k)[1] for k in half.keys}
