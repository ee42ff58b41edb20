"""The organism's five tasks in one items table: ``binary_add`` and ``binary_sub`` (``binary.py``),
``relational_3ps``, ``relational_4ps`` and ``relational_carddir`` (``relational.py``).

- ``organism_items()``: the canonical items — the structures people solved (392 + 16 + 52 + 56 =
  516; every human item's prompt and answer is among them, but for carddir's object names). The
  trainer evaluates on them.
- ``training_items()``: the canonical items plus ``GENERATED`` random relational items per task
  (other letters and names, other premise orders, premise sets whose order is not fixed), drawn
  with the fixed seed ``ITEMS_SEED`` — the same for every training seed, so two seeds differ only
  in initialisation, batch order and sampling. The models are trained on these.

Columns: ``item_id, task, prompt, answer``, ``steps_full`` / ``steps_short`` (the lines of the
full and the short worked solution), ``feat_steps`` / ``feat_work_steps`` (their counts: every
step, and the steps that need work); binary rows also ``op, a, b, bits, feat_carries,
feat_work_columns, feat_ones`` (missing elsewhere).
"""

from __future__ import annotations

import pandas as pd

from experiments.models.organism.binary import binary_items
from experiments.models.organism.relational import relational_items

TASKS = ("binary_add", "binary_sub", "relational_3ps", "relational_4ps", "relational_carddir")
GENERATED = 200
ITEMS_SEED = 0


def _with_counts(items: pd.DataFrame) -> pd.DataFrame:
    return items.assign(
        feat_steps=items["steps_full"].str.len(), feat_work_steps=items["steps_short"].str.len()
    )


def organism_items(bits: int = 4) -> pd.DataFrame:
    """The canonical items of the five tasks (``bits``: the binary operands' width)."""
    return _with_counts(pd.concat([binary_items(bits), relational_items()], ignore_index=True))


def training_items(n_generated: int = GENERATED) -> pd.DataFrame:
    """The canonical items and ``n_generated`` generated relational items per task."""
    return _with_counts(
        pd.concat([binary_items(), relational_items(n_generated, ITEMS_SEED)], ignore_index=True)
    )
