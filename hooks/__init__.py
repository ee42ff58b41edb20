"""handan.hooks: everything that touches a running model."""
from __future__ import annotations

import importlib
from typing import Any

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
    """Import on first use, so `import hooks` does not import torch."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hooks' has no attribute {name!r}")
