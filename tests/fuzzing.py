"""What every fuzz test asserts of a bad input (README, "Reliability"): the command ends in
handan's own error — exit code 2 and one line, naming what is wrong — never a traceback, and every
file that existed before is byte-identical afterwards, with no file added. An option value of the
wrong type (``--samples abc``) is refused by the option parser instead: exit code 2 and its usage
message naming the option.

Hypothesis settings are shared: a bounded number of examples, no deadline (the machine is
shared), ``derandomize`` so that CI draws the same cases every run, no example database."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hypothesis import HealthCheck, settings
from typer.testing import CliRunner

from experiments.cli import app


def fuzz(max_examples: int):
    """The settings of a fuzz test with ``max_examples`` cases."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def refused(args: list, folder: Path, *named: str) -> str:
    """Run ``handan ARGS`` in-process and assert the refusal contract; returns the error line.
    ``named``: texts the error line must contain (the column, line, key or option at fault)."""
    before = snapshot(folder)
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"traceback for handan {args}: {result.exception!r}") from (
            result.exception
        )
    assert result.exit_code == 2, f"exit {result.exit_code} for handan {args}: {result.output}"
    if "Usage:" in result.stderr:  # the option parser refused a value of the wrong type
        text = " ".join(result.stderr.replace("│", " ").split())
        assert "Invalid value" in text or "No such option" in text, text
        for name in named:
            assert name in text, f"{name!r} not named in: {text}"
        assert snapshot(folder) == before, f"handan {args} changed or added files: {text}"
        return text
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    # warnings may come first; the error is one line, the last
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    for text in named:
        assert text in errors[0], f"{text!r} not named in: {errors[0]}"
    assert snapshot(folder) == before, f"handan {args} changed or added files: {errors[0]}"
    return errors[0]
