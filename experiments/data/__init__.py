"""Tasks with real human cost: dataset registry, loaders to Items tables, answer checkers.

- ``DATASETS``: name -> :class:`DatasetSpec` (game24, binary, relational, syllogisms).
- ``load_items(name, data_dir=None)``: the dataset's Items table (contract in experiments.contracts).
- ``load_items_file(path)``: a user CSV/TSV/parquet already in the Items contract.
- ``get_checker(task)``: ``checker(response, reference) -> bool``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.contracts import ITEM_COLUMNS, validate_items
from experiments.data.checkers import get_checker
from experiments.data.fetch import fetch
from experiments.data.items_file import load_items_file
from experiments.data.registry import DATASETS, DatasetSpec, get_dataset
from experiments.errors import MissingInput

__all__ = ["DATASETS", "DatasetSpec", "get_checker", "items_from", "load_items", "load_items_file"]


def items_from(source: str | Path, data_dir: str | Path | None = None) -> pd.DataFrame:
    """An Items table from an existing file, else from the dataset named ``source``."""
    if Path(source).exists():
        return load_items_file(source)
    if str(source) in DATASETS:
        return load_items(str(source), data_dir)
    raise MissingInput(
        f"items {str(source)!r} is neither an existing file nor a dataset name; datasets: {', '.join(sorted(DATASETS))}"
    )


def load_items(name: str, data_dir: str | Path | None = None) -> pd.DataFrame:
    """Items table of dataset ``name``. ``data_dir``: a mirror folder (``OWNER/REPO/PATH``);
    None means ``HANDAN_DATA_DIR`` if set, else download from the pinned commit into the cache."""
    spec = get_dataset(name)
    items = spec.loader(fetch(spec, data_dir))
    order = list(ITEM_COLUMNS) + sorted(c for c in items.columns if c not in ITEM_COLUMNS)
    return validate_items(items[order].reset_index(drop=True), source=f"dataset {name}")
