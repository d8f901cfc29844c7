"""The package's optional parts: importing one that is not installed is an error naming the extra that brings it.

Core (no extra) is the engine on SQLite with an OpenAI-compatible model and embedder. The extras are declared in
``pyproject.toml``; the modules below are the ones whose absence each extra explains.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from timemory.errors import MissingExtraError

__all__ = ["installed", "require"]


def _top(name: str) -> str:
    return name.partition(".")[0]


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (some take seconds)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is absent
        return False


def require(module: str, extra: str, feature: str, *, hint: str = "") -> ModuleType:
    """Import ``module``; when it, or a module it needs, is absent, raise :class:`MissingExtraError` naming ``extra``.

    Only a missing module turns into that error: a module that is present but fails for another reason raises as is.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise MissingExtraError(feature, extra, _top(exc.name or module), hint=hint) from exc
