"""Storage: the tables, the repositories over them and :class:`Store`, which composes them."""

from timemory.store._database import Database, MemoryState, UserWrite
from timemory.store._episodes import EpisodeState, Learnt
from timemory.store._keys import ApiKey
from timemory.store._ops import AddMemory, ChangeMemory, DeleteMemory
from timemory.store._runs import save_run
from timemory.store._store import Store
from timemory.store._summaries import Summary

__all__ = [
    "save_run",
    "AddMemory",
    "ApiKey",
    "ChangeMemory",
    "Database",
    "DeleteMemory",
    "EpisodeState",
    "Learnt",
    "MemoryState",
    "Store",
    "Summary",
    "UserWrite",
]
