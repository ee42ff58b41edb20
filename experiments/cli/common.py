"""What the CLI modules share: options defined once (model, items, data folder, generation
settings, device) and the one place where handan's own errors become one line and exit code 2."""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from experiments.errors import HandanError
from experiments.generation.config import GenerationSettings

console = Console(stderr=True)

ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="Registry name (see `handan models`) or a spec .yaml")
]
ItemsOpt = Annotated[
    str,
    typer.Option(
        "--items", help="Items table (.parquet/.csv) or a dataset name (`handan data list`)"
    ),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="HANDAN_DATA_DIR",
        help="Local mirror of the human data (OWNER/REPO/PATH layout); default: the tables shipped in the package for binary and relational, a pinned download for the others",
    ),
]


def _device(value: str | None) -> str | None:
    """A device torch can parse (checked before a model loads; whether it exists, at load)."""
    if value is not None:
        import torch

        try:
            torch.device(value)
        except (RuntimeError, ValueError) as err:
            raise typer.BadParameter(
                f"{value!r} is not a torch device; e.g. cpu, cuda, cuda:1"
            ) from err
    return value


DeviceOpt = Annotated[
    str | None,
    typer.Option(help="torch device (default: cuda if available, else cpu)", callback=_device),
]
DtypeOpt = Annotated[str | None, typer.Option(help="model dtype (default: the spec's)")]
# generation settings: the defaults are experiments.generation.GenerationSettings', validated there
SamplesOpt = Annotated[int, typer.Option(help="samples per item")]
MaxNewTokensOpt = Annotated[int | None, typer.Option(help="token budget (default: the spec's)")]
TemperatureOpt = Annotated[
    float | None, typer.Option(help="sampling temperature, 0 = greedy (default: the spec's)")
]
TopPOpt = Annotated[float | None, typer.Option(help="nucleus sampling mass (default: the spec's)")]
SeedOpt = Annotated[int, typer.Option(help="run seed")]
BatchSizeOpt = Annotated[int, typer.Option(help="sequences per batch")]


#: the generation defaults, for the CLI options' defaults (defined once, in GenerationSettings)
GENERATION_DEFAULTS = GenerationSettings()


#: file-system refusals that a path or the disk causes, not handan: one line naming the file
_USER_OS_ERRORS = {
    errno.ENOSPC,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.EISDIR,
    errno.ENOTDIR,
    errno.EEXIST,
    errno.ENAMETOOLONG,
}


def _os_message(err: OSError) -> str:
    name = err.filename or "a file"
    if err.errno == errno.ENOSPC:
        return (
            f"the disk is full (writing {name}); files are written whole or not at all, so free "
            "some space and rerun the same command: generation and recording resume after the "
            "last complete batch"
        )
    return f"{name}: {err.strerror}; check the path (a folder, not a file, where one is expected) and its permissions"


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn handan's own errors (``experiments.errors``), invalid settings (pydantic) and a path
    the file system refuses (a full disk, no permission, a file where a folder is expected) into
    one red line and exit code 2; anything else is a bug and keeps its traceback."""
    from pydantic import ValidationError

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HandanError as err:
            console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from err
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in err.errors()
            )
            console.print(
                f"[bold red]error:[/] invalid setting ({problems})", highlight=False, soft_wrap=True
            )
            raise typer.Exit(code=2) from err
        except OSError as err:
            if err.errno not in _USER_OS_ERRORS:
                raise
            console.print(
                f"[bold red]error:[/] {_os_message(err)}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(code=2) from err

    return wrapper
