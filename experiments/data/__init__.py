"""Tasks with real human cost: dataset registry, loaders to Items tables, answer checkers.

- ``DATASETS``: name -> :class:`DatasetSpec` (game24, binary, relational, syllogisms).
- ``load_items(name, data_dir=None)``: the dataset's Items table (contract in experiments.contracts).
- ``load_items_file(path)``: a user CSV/TSV/parquet already in the Items contract.
- ``import_trials(df, mapping)``: a user's trials (one row per participant x item) -> Items,
  aggregated by the registered datasets' rule (``handan data import``).
- ``get_checker(task)``: ``checker(response, reference) -> bool``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.data.build import build_items
from experiments.data.checkers import get_checker
from experiments.data.embedded import embedded_items
from experiments.data.fetch import default_data_dir
from experiments.data.items_file import load_items_file
from experiments.data.registry import DATASETS, DatasetSpec, get_dataset
from experiments.data.trial_mapping import TrialMapping
from experiments.data.trials import import_trials
from experiments.errors import MissingInput

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "TrialMapping",
    "get_checker",
    "import_trials",
    "items_from",
    "load_items",
    "load_items_file",
]


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
    """Items table of dataset ``name``. With a data folder (``data_dir``, else ``HANDAN_DATA_DIR``)
    it is built from the raw files there (``OWNER/REPO/PATH``). Without one: the table shipped in
    the package for ``binary`` and ``relational`` (built from the pinned raw files by the same
    code; :mod:`experiments.data.embedded`), and for the others the raw files downloaded from the
    pinned commit into the cache."""
    get_dataset(name)
    if data_dir is None and default_data_dir() is None:
        shipped = embedded_items(name)
        if shipped is not None:
            return shipped
    return build_items(name, data_dir)
