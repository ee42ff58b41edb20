"""Helpers shared by the CLI modules: clean errors instead of tracebacks for bad input."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

console = Console(stderr=True)


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors that bad input raises (ValueError, FileNotFoundError, FileExistsError)
    into one red line and exit code 2; real bugs keep their traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError, FileExistsError, KeyError) as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else err
            console.print(f"[bold red]error:[/] {message}")
            raise typer.Exit(code=2) from err

    return wrapper
