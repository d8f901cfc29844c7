"""Search in this process: each user's vectors and keyword index cached in a :class:`NumpyIndex`, patched on writes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy.orm import Session

from timemory.schemas import Memory, SearchHit, SearchMode
from timemory.search._keyword import term_words
from timemory.search._matrix import NumpyIndex, UserVectors
from timemory.search._ranking import Ranked
from timemory.store import MemoryState, Store, UserWrite


def columns(states: Sequence[MemoryState]) -> tuple[list[str], list[str], list[str], list[np.ndarray], list[str]]:
    """Memory states as the columns a :class:`NumpyIndex` loads."""
    return ([s[0] for s in states], [s[1] for s in states], [s[2] for s in states], [s[3] for s in states],
            [s[4] for s in states])


def hits(store: Store, s: Session, user_id: str, entry: UserVectors, ranked: list[Ranked],
         words: dict[str, str]) -> list[SearchHit]:
    """The memories of ``ranked``, each with the query ``words`` it holds (as typed, not their stems)."""
    for r in ranked:
        r.breakdown.matched_terms = [words[t] for t in entry.keywords.matched(r.row, list(words))]
    ids = [entry.ids[r.row] for r in ranked]
    found = store.memories.fetch(s, user_id, ids)
    return [SearchHit(memory=found[mid], score=r.breakdown.fused, scores=r.breakdown)
            for mid, r in zip(ids, ranked, strict=True) if mid in found]


def follow_writes(store: Store, index: NumpyIndex, *, patch: bool = True) -> None:
    """Keep ``index`` in step with the store: patch a user's cached rows after this process's writes (or, without
    ``patch``, forget them), and forget the user after any other write (another process's writes move the version,
    which forces a reload)."""

    def written(write: UserWrite) -> None:
        before = index.peek(write.user_id)
        if before is None:
            return
        if not patch or write.from_version is None or before.version != write.from_version:
            index.invalidate(write.user_id)
        else:
            index.patch(write.user_id, before, write.from_version, write.touched, write.rows)

    store.db.on_user_write(written, wants_rows=(lambda user_id: index.peek(user_id) is not None) if patch else None)


class EmbeddedSearch:
    """Exact search in numpy over the user's cached rows (SQLite and MySQL-protocol servers)."""

    def __init__(self, store: Store, index: NumpyIndex | None = None) -> None:
        self.store = store
        self.index = index or NumpyIndex(store.dim)
        follow_writes(store, self.index)

    def _load(self, user_id: str) -> tuple[list[str], list[str], list[str], list[np.ndarray], list[str]]:
        return columns(self.store.memories.states(user_id))

    def entry(self, user_id: str) -> UserVectors:
        """The user's cached rows, loaded from the database unless the cache holds the current version."""
        with self.store.db.read() as s:
            return self._entry(s, user_id, None)

    def _entry(self, s: Session, user_id: str, version: int | None) -> UserVectors:
        current = self.store.db.version(s, user_id) if version is None else version
        return self.index.vectors(user_id, current, self._load)

    def find(
        self,
        user_id: str,
        query: str,
        vectors: np.ndarray | None,
        k: int,
        *,
        mode: SearchMode = "hybrid",
        types: Sequence[str] | None = None,
        statuses: Sequence[str] | None = ("active",),
        version: int | None = None,
    ) -> list[SearchHit]:
        words = term_words(query)
        vector = None if vectors is None else self.store.memories.check_queries(vectors)[0]
        with self.store.db.read() as s:  # one session for the version and the hits: a search is one round trip more
            entry = self._entry(s, user_id, version)
            ranked = self.index.find(entry, vector, list(words), k, mode, types, statuses)
            return hits(self.store, s, user_id, entry, ranked, words)

    def nearest(
        self,
        user_id: str,
        queries: np.ndarray,
        k: int,
        *,
        types: Sequence[str] | None = None,
        statuses: Sequence[str] | None = ("active",),
        version: int | None = None,
    ) -> list[list[tuple[Memory, float]]]:
        queries = self.store.memories.check_queries(queries)
        with self.store.db.read() as s:
            entry = self._entry(s, user_id, version)
            ranked = self.index.rank(entry, queries, k, types, statuses)
            found = self.store.memories.fetch(s, user_id, [mid for row in ranked for mid, _ in row])
        return [[(found[mid], score) for mid, score in row if mid in found] for row in ranked]
