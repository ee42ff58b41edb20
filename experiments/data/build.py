"""A registered dataset's Items table built from its raw files (the mirror or the pinned download)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.contracts import ITEM_COLUMNS, validate_items
from experiments.data.fetch import fetch
from experiments.data.registry import get_dataset


def build_items(name: str, data_dir: str | Path | None = None) -> pd.DataFrame:
    """Items table of dataset ``name`` from its raw files: ``data_dir`` (a mirror folder,
    ``OWNER/REPO/PATH``), else ``HANDAN_DATA_DIR``, else downloaded from the pinned commit into
    the cache; every file sha256-checked. Columns: the contract's, then ``feat_*`` sorted."""
    spec = get_dataset(name)
    items = spec.loader(fetch(spec, data_dir))
    order = list(ITEM_COLUMNS) + sorted(c for c in items.columns if c not in ITEM_COLUMNS)
    return validate_items(items[order].reset_index(drop=True), source=f"dataset {name}")
