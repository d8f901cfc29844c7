"""Search on TiDB: vectors ranked by ``VEC_COSINE_DISTANCE`` in SQL, words by the user's BM25 index (kept in this
process, without the vectors), fused as in the embedded search.

With the HNSW index a ``WHERE`` pre-filter would stop the index from being used, so that path over-fetches in a
subquery and filters outside it; when that misses (the user's rows are not among the global nearest), an exact scan
of the user's rows follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Select, func, literal, select

from timemory.schemas import Memory, SearchHit, SearchMode
from timemory.search._embedded import columns, follow_writes, hits
from timemory.search._kernels import bm25_of
from timemory.search._keyword import term_words
from timemory.search._matrix import NumpyIndex
from timemory.search._ranking import POOL, fuse, rank_keyword, rank_vector
from timemory.store import Store
from timemory.store._models import MemoryRow


def _cosine_distance(query: np.ndarray) -> Any:
    """TiDB's cosine distance of each row's embedding to ``query``, labelled ``distance``."""
    from tidb_vector.utils import encode_vector  # the tidb extra, checked when the store connects

    q = encode_vector(np.asarray(query, dtype=np.float32).ravel())
    return func.VEC_COSINE_DISTANCE(MemoryRow.embedding, literal(q)).label("distance")


def tidb_search_statement(
    user_id: str,
    query: np.ndarray,
    k: int,
    *,
    types: Sequence[str] | None,
    statuses: Sequence[str] | None,
    use_index: bool,
    overfetch: int = 10,
) -> Select[tuple[str, float]]:
    """The TiDB statement returning (id, cosine distance), nearest first."""
    distance = _cosine_distance(query)
    if not use_index:
        stmt = select(MemoryRow.id, distance).where(MemoryRow.user_id == user_id)
        if types is not None:
            stmt = stmt.where(MemoryRow.type.in_(list(types)))
        if statuses is not None:
            stmt = stmt.where(MemoryRow.status.in_(list(statuses)))
        return stmt.order_by(distance).limit(k)
    inner = (
        select(MemoryRow.id, MemoryRow.user_id, MemoryRow.type, MemoryRow.status, distance)
        .order_by(distance)
        .limit(k * overfetch)
        .subquery("nearest")
    )
    outer = select(inner.c.id, inner.c.distance).where(inner.c.user_id == user_id)
    if types is not None:
        outer = outer.where(inner.c.type.in_(list(types)))
    if statuses is not None:
        outer = outer.where(inner.c.status.in_(list(statuses)))
    return outer.order_by(inner.c.distance).limit(k)


def tidb_cosine_statement(user_id: str, query: np.ndarray, ids: Sequence[str]) -> Select[tuple[str, float]]:
    """The TiDB statement returning (id, cosine distance) of some of the user's memories (keyword hits that the
    vector search did not return, for the hybrid fusion)."""
    return select(MemoryRow.id, _cosine_distance(query)).where(MemoryRow.user_id == user_id,
                                                               MemoryRow.id.in_(list(ids)))


class TiDBSearch:
    """Vectors ranked in TiDB's SQL; the keyword index cached per user from the texts."""

    def __init__(self, store: Store, index: NumpyIndex | None = None) -> None:
        self.store = store
        self.index = index or NumpyIndex(store.dim)
        follow_writes(store, self.index, patch=False)  # its rows hold no vectors: reloaded from the texts

    def _texts(self, user_id: str) -> tuple[list[str], list[str], list[str], list[np.ndarray], list[str]]:
        """The cached entry holds zero-width rows and the keyword index."""
        return columns(self.store.memories.states(user_id, vectors=False))

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
        with self.store.db.read() as s:
            entry = self.index.vectors(user_id, self.store.db.version(s, user_id), self._texts)
        kw_rows, bm25 = self.index.keyword_hits(entry, list(words), self.index.mask(entry, types, statuses))
        keyword_ids = [entry.ids[r] for r in kw_rows]
        if mode == "keyword":
            ranked = rank_keyword(kw_rows, bm25, k)
        else:
            assert vector is not None
            nearest = dict(self._rank(user_id, vector, k if mode == "vector" else max(k, POOL), types, statuses))
            ids = [*nearest, *(mid for mid in keyword_ids if mid not in nearest)]
            cosine = nearest | self._cosine(user_id, vector, ids[len(nearest):])
            rows = np.array([entry.rows[mid] for mid in ids if mid in entry.rows], np.int64)
            scores = np.array([cosine[entry.ids[r]] for r in rows], np.float32)
            keyword = bm25_of(entry.n, kw_rows, bm25)[rows]
            if mode == "vector":
                ranked = rank_vector(rows, scores, k, keyword)
            else:
                ranked = fuse(rows, scores, keyword, float(bm25.max()) if len(bm25) else 0.0, k)
        with self.store.db.read() as s:
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
        ranked = [self._rank(user_id, q, k, types, statuses) for q in queries]
        found = self.store.memories.get_many(user_id, [mid for row in ranked for mid, _ in row])
        return [[(found[mid], score) for mid, score in row if mid in found] for row in ranked]

    def _cosine(self, user_id: str, vector: np.ndarray, ids: Sequence[str]) -> dict[str, float]:
        if not ids:
            return {}
        with self.store.db.read() as s:
            rows: Sequence[Any] = s.execute(tidb_cosine_statement(user_id, vector, ids)).all()
        return {r[0]: 1.0 - float(r[1]) for r in rows}

    def _rank(self, user_id: str, query: np.ndarray, k: int, types: Sequence[str] | None,
              statuses: Sequence[str] | None) -> list[tuple[str, float]]:
        with self.store.db.read() as s:
            rows: Sequence[Any] = []
            if self.store.db.vector_index:
                stmt = tidb_search_statement(user_id, query, k, types=types, statuses=statuses, use_index=True)
                rows = s.execute(stmt).all()
            if len(rows) < k:  # the index path missed (user's rows not among the global nearest): exact scan
                stmt = tidb_search_statement(user_id, query, k, types=types, statuses=statuses, use_index=False)
                rows = s.execute(stmt).all()
        return [(r[0], 1.0 - float(r[1])) for r in rows]
