"""The Items tables shipped inside the package (``experiments/data/embedded/``), so that the demo
runs with no data folder and no network.

``binary`` and ``relational`` (both MIT; licences in ``embedded/LICENSE``) are built by
:func:`experiments.data.build.build_items` — the registered loaders and handan's aggregation —
from the pinned raw files, and stored as parquet beside a ``PROVENANCE.md`` that lists the
upstream repo, commit, licence and the sha256 of every raw file they came from. ``handan data
embed`` regenerates both; ``tests/test_data_embedded.py`` rebuilds them from the mirror and asserts
they are equal, so they cannot drift from the code. The raw trial files are never shipped.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.contracts import validate_items, write_parquet_atomic
from experiments.data.build import build_items
from experiments.data.registry import get_dataset

EMBEDDED = ("binary", "relational")
FOLDER = Path(__file__).parent / "embedded"
PROVENANCE = "PROVENANCE.md"


def embedded_items(name: str) -> pd.DataFrame | None:
    """The shipped Items table of dataset ``name``, or None when it ships none."""
    path = FOLDER / f"{name}.parquet"
    if name not in EMBEDDED or not path.is_file():
        return None
    return validate_items(pd.read_parquet(path), source=f"embedded table {path}")


def provenance(tables: dict[str, pd.DataFrame]) -> str:
    """The ``PROVENANCE.md`` text for the embedded ``tables`` (name -> Items table)."""
    lines = [
        "# Embedded Items tables",
        "",
        "Written by `handan data embed` (experiments/data/embedded.py); do not edit by hand. Each",
        "table is the registered dataset's Items table, built by its loader and handan's",
        "aggregation (experiments/data/aggregate.py) from the raw files listed below, fetched from",
        "the pinned upstream commit and sha256-checked. The raw files are not shipped.",
        "tests/test_data_embedded.py rebuilds the tables from the mirror and asserts they are equal.",
        "Licences: LICENSE in this folder (the upstream notices).",
    ]
    for name, items in tables.items():
        spec = get_dataset(name)
        counts = ", ".join(f"{t} {n}" for t, n in items["task"].value_counts(sort=False).items())
        lines += [
            "",
            f"## {name}.parquet",
            "",
            f"- items: {len(items)} ({counts})",
            f"- source: https://github.com/{spec.repo} @ {spec.commit}",
            f"- licence: {spec.licence}",
            f"- citation: {spec.citation}",
            f"- raw files ({len(spec.files)}), sha256 and path in the repo:",
            "",
            "| sha256 | path |",
            "|---|---|",
            *(f"| {sha} | `{path}` |" for path, sha in sorted(spec.files.items())),
        ]
    return "\n".join(lines) + "\n"


def write_embedded(data_dir: str | Path | None = None, folder: Path | None = None) -> list[Path]:
    """Rebuild every embedded table from the raw files (``data_dir``: a mirror, else
    ``HANDAN_DATA_DIR``, else download) into ``folder`` (default: the package's), with its
    ``PROVENANCE.md``."""
    folder = FOLDER if folder is None else folder
    folder.mkdir(parents=True, exist_ok=True)
    tables = {name: build_items(name, data_dir) for name in EMBEDDED}
    written = []
    for name, items in tables.items():
        write_parquet_atomic(items, folder / f"{name}.parquet")
        written.append(folder / f"{name}.parquet")
    (folder / PROVENANCE).write_text(provenance(tables))
    return [*written, folder / PROVENANCE]
