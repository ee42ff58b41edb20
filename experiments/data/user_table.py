"""Reading a user's table (CSV / TSV / parquet) so that errors can name the line or row."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from experiments.errors import InputError, MissingInput


@dataclass(frozen=True)
class UserTable:
    """A user's table and how to name a position in it: ``where(i)`` for the 0-based row index
    ``i`` is ``"line i + 2"`` in a CSV/TSV (the header is line 1) and ``"row i + 1"`` otherwise."""

    frame: pd.DataFrame
    source: str
    word: str = "row"
    offset: int = 1

    def where(self, i: int) -> str:
        """``"<source>, line 7"`` for the 0-based row index ``i``."""
        return f"{self.source}, {self.word} {i + self.offset}"


def read_user_table(path: str | Path, *, what: str = "table") -> UserTable:
    """Read ``path``: CSV/TSV with every column as text (empty cells are NaN), parquet as stored.
    ``what`` names the expected content in the errors (a missing file, an unknown format)."""
    path = Path(path)
    if not path.exists():
        raise MissingInput(
            f"{path} does not exist; pass the path of a .csv, .tsv or .parquet {what}"
        )
    if path.suffix == ".parquet":
        return UserTable(pd.read_parquet(path), str(path))
    if path.suffix not in {".csv", ".tsv"}:
        raise InputError(
            f"{path}: unknown table format {path.suffix!r}; use .csv, .tsv or .parquet"
        )
    try:
        frame = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", dtype=str)
    except pd.errors.ParserError as err:
        raise InputError(
            f"{path}: malformed row ({err}); every line needs one value per header column"
        ) from err
    return UserTable(frame, str(path), "line", 2)
