"""Helpers shared by the CLI modules: clean errors instead of tracebacks for bad input."""
from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

console = Console(stderr=True)


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors that bad input raises (ValueError, FileNotFoundError, FileExistsError)
    and a full disk into one red line and exit code 2; real bugs keep their traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError, FileExistsError) as err:
            console.print(f"[bold red]error:[/] {err}")
            raise typer.Exit(code=2) from err
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
            console.print(f"[bold red]error:[/] the disk is full (writing {err.filename or 'a file'}); files are "
                          "written whole or not at all, so free some space and rerun the same command: "
                          "generation and recording resume after the last complete batch")
            raise typer.Exit(code=2) from err

    return wrapper
