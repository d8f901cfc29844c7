"""Serving TiMemory to others: the HTTP API, the MCP server, queue workers and the command line.

The HTTP API needs the ``server`` extra; it is imported only when asked for, so the command line runs without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from timemory.service._cli import main, parser
from timemory.service._workers import is_loopback, run_worker, serve

if TYPE_CHECKING:
    from timemory.service._api import create_app

__all__ = ["create_app", "is_loopback", "main", "parser", "run_worker", "serve"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from timemory.service._api import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
