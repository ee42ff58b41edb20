"""handan.hooks: everything that touches a running model.

Public names are imported on first use (``import hooks`` does not import torch); the
``TYPE_CHECKING`` block and ``__dir__`` make them visible to IDEs, type checkers and ``dir()``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hooks.backends import get_backend
    from hooks.interventions import Steer
    from hooks.recorder import Recorder
    from hooks.sites import list_sites, resolve_site
    from hooks.store import ActivationStore

_EXPORTS = {
    "Recorder": "hooks.recorder",
    "Steer": "hooks.interventions",
    "ActivationStore": "hooks.store",
    "resolve_site": "hooks.sites",
    "list_sites": "hooks.sites",
    "get_backend": "hooks.backends",
}
__all__ = ["ActivationStore", "Recorder", "Steer", "get_backend", "list_sites", "resolve_site"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hooks' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
