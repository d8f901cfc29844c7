"""The per-user cache that search indexes share: least recently used users leave first, once the cache holds more
than ``max_users`` users or more than ``max_bytes`` bytes. A byte bound keeps many small users beside a few large
ones, where a user count alone would let 64 users of 100k memories fill the RAM or let 64 tiny ones fill the cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Sized(Protocol):
    @property
    def nbytes(self) -> int: ...


E = TypeVar("E", bound=Sized)

MAX_USERS = 4_096
MAX_BYTES = 1 << 30  # 1 GiB: about 500k cached memories (vectors and keyword index), see docs/scaling.md


class UserCache(Generic[E]):
    """Thread-safe LRU of one entry per user, bounded by users and by bytes (each entry's ``nbytes`` when put).
    The most recently put entry always stays, even alone above the byte bound."""

    def __init__(self, max_users: int = MAX_USERS, max_bytes: int = MAX_BYTES) -> None:
        self.max_users, self.max_bytes = max_users, max_bytes
        self._entries: OrderedDict[str, tuple[E, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, user_id: str) -> E | None:
        """The user's entry, now the most recently used."""
        with self._lock:
            found = self._entries.get(user_id)
            if found is None:
                return None
            self._entries.move_to_end(user_id)
            return found[0]

    def peek(self, user_id: str) -> E | None:
        """The user's entry, its place in the order unchanged."""
        with self._lock:
            found = self._entries.get(user_id)
            return None if found is None else found[0]

    def put(self, user_id: str, entry: E, keep: Callable[[E], bool] | None = None) -> bool:
        """Cache ``entry`` unless ``keep(cached)`` says the cached one stays; then evict down to the bounds."""
        size = entry.nbytes
        with self._lock:
            cached = self._entries.get(user_id)
            if cached is not None and keep is not None and keep(cached[0]):
                return False
            if cached is not None:
                self._bytes -= cached[1]
            self._entries[user_id] = (entry, size)
            self._entries.move_to_end(user_id)
            self._bytes += size
            while len(self._entries) > 1 and (len(self._entries) > self.max_users or self._bytes > self.max_bytes):
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
            return True

    def invalidate(self, user_id: str | None = None) -> None:
        """Forget one user, or everyone."""
        with self._lock:
            if user_id is None:
                self._entries.clear()
                self._bytes = 0
            elif (found := self._entries.pop(user_id, None)) is not None:
                self._bytes -= found[1]

    @property
    def users(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached entries, as each measured itself when put."""
        return self._bytes
