"""handan's own exception types.

Each also subclasses the built-in it replaces, so ``except ValueError`` in user code (and
``pytest.raises(ValueError)``) keeps working. The CLI turns exactly these into one line and exit
code 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class HandanError(Exception):
    """Base of every error that bad input or a refused operation raises (never a bug)."""


class InputError(HandanError, ValueError):
    """A file, option or setting is invalid; the message names it and the fix."""


class MissingInput(HandanError, FileNotFoundError):
    """A file or folder the command needs does not exist."""


class SettingsMismatch(HandanError, FileExistsError, ValueError):
    """An output exists from another model or other settings: resuming would mix them. One type
    for traces files, activation stores and steering runs alike (it is also a ``ValueError``, which
    the store raised before this type existed)."""


class NotProbeable(InputError):
    """A probe target cannot be built for a model (e.g. its own reasoning length when it never
    reasons); the probe stage lists it in ``probes/skipped.csv`` instead of failing the run."""
