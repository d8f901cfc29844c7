"""Storage: SQLAlchemy models, the per-dialect vector search and the ``Store`` interface."""

from .ops import AddMemory, ChangeMemory, DeleteMemory, Op
from .store import Store

__all__ = ["AddMemory", "ChangeMemory", "DeleteMemory", "Op", "Store"]
