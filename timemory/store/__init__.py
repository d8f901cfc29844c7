"""Storage: the tables, the repositories over them and :class:`Store`, which composes them."""

from timemory.store.database import Database, MemoryState, UserWrite
from timemory.store.engine import tidb_vector_index_ddl
from timemory.store.episodes import EpisodeState, Learnt
from timemory.store.keys import ApiKey
from timemory.store.models import TIDB_VECTOR_DIM_ATTR, Base, MemoryRow
from timemory.store.ops import AddMemory, ChangeMemory, DeleteMemory, Op
from timemory.store.store import Store
from timemory.store.summaries import Summary

__all__ = [
    "TIDB_VECTOR_DIM_ATTR",
    "AddMemory",
    "ApiKey",
    "Base",
    "ChangeMemory",
    "Database",
    "DeleteMemory",
    "EpisodeState",
    "Learnt",
    "MemoryRow",
    "MemoryState",
    "Op",
    "Store",
    "Summary",
    "UserWrite",
    "tidb_vector_index_ddl",
]
