"""Reading a user's table (CSV / TSV / parquet) or YAML file so that errors name the file, and
the line or row, and the fix; nothing a user gives reaches a traceback from the parsers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from experiments.errors import InputError, MissingInput

#: boolean-like text, any case (``handan data import``'s ``correct``, a traces file's flags)
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0", "correct"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0", "incorrect"})


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


def _existing_file(path: Path, what: str, kinds: str) -> None:
    if not path.exists():
        raise MissingInput(f"{path} does not exist; pass the path of a {kinds} {what}")
    if not path.is_file():
        raise InputError(f"{path} is not a file; pass the path of a {kinds} {what}")


def read_user_table(path: str | Path, *, what: str = "table") -> UserTable:
    """Read ``path``: CSV/TSV with every column as text (empty cells are NaN), parquet as stored.
    ``what`` names the expected content in the errors (a missing file, an unknown format)."""
    path = Path(path)
    _existing_file(path, what, ".csv, .tsv or .parquet")
    if path.suffix == ".parquet":
        import pyarrow as pa

        try:
            return UserTable(pd.read_parquet(path), str(path))
        except (pa.ArrowException, OSError) as err:
            raise InputError(
                f"{path} is not a readable parquet file ({' '.join(str(err).split())[:200]}); "
                f"write the {what} again, or give it as .csv"
            ) from err
    if path.suffix not in {".csv", ".tsv"}:
        raise InputError(
            f"{path}: unknown table format {path.suffix!r}; use .csv, .tsv or .parquet"
        )
    try:
        frame = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", dtype=str)
    except pd.errors.EmptyDataError as err:
        raise InputError(f"{path} is empty; give the {what} a header line and rows") from err
    except pd.errors.ParserError as err:
        raise InputError(
            f"{path}: malformed row ({' '.join(str(err).split())}); every line needs one value "
            "per header column"
        ) from err
    except UnicodeDecodeError as err:
        raise InputError(
            f"{path} is not UTF-8 text (byte {err.start}); save the {what} as UTF-8"
        ) from err
    return UserTable(frame, str(path), "line", 2)


def read_yaml_mapping(path: str | Path, *, what: str, keys: str) -> dict:
    """A YAML file that must hold a mapping, read with ``yaml.safe_load`` (tags that would build
    Python objects are refused, never executed); an empty file is ``{}``. ``what`` names the file's
    role in the errors, ``keys`` gives examples of its keys."""
    import yaml

    path = Path(path)
    _existing_file(path, what, "YAML")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise InputError(f"{path} is not UTF-8 text (byte {err.start}); save it as UTF-8") from err
    except yaml.YAMLError as err:
        raise InputError(f"{path} is not valid YAML: {' '.join(str(err).split())}") from err
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(
            f"{path} holds a {type(raw).__name__}, not a mapping; a {what} is a YAML mapping of "
            f"{keys}"
        )
    bad = [k for k in raw if not isinstance(k, str)]
    if bad:
        raise InputError(f"{path}: key {bad[0]!r} is not a name; a {what} is a mapping of {keys}")
    return raw
