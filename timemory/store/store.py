"""The storage interface: users, sessions, messages and pipeline runs (from :class:`Conversations`), and the
memories with their vectors, events and search — one class over SQLAlchemy for SQLite, MySQL-protocol servers
and TiDB. Concurrency is described in ``db.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, bindparam, func, select
from sqlalchemy.orm import Session

from ..errors import EmbeddingMismatchError, NotFoundError
from ..schemas import AppliedChange, JobLease, Memory, MemoryEvent, SearchHit, SearchMode
from ..validation import check_user_id
from .engine import make_engine
from .jobs import JobQueue
from .keyword import term_words
from .models import MemoryEventRow, MemoryRow, MetaRow, utcnow
from .ops import Op
from .ranking import POOL, Ranked, fuse, rank_keyword, rank_vector
from .rows import EVENT_COLUMNS, MEMORY_COLUMNS, event_from, event_from_columns, memory_from, naive_utc
from .vector import NumpyIndex, UserVectors, bm25_of, tidb_cosine_statement, tidb_search_statement
from .writes import MemoryWriter

# Built once: a search fetches its hits with it, and building the statement cost more than running it.
_MEMORIES_BY_ID = select(*MEMORY_COLUMNS).where(MemoryRow.user_id == bindparam("user_id"),
                                               MemoryRow.id.in_(bindparam("ids", expanding=True)))


class Store(JobQueue):
    """Users, sessions, messages, memories with their vectors and events, and pipeline runs."""

    def __init__(
        self,
        engine: Engine,
        *,
        embedding_model: str,
        embedding_dim: int,
        vector_index: bool = False,
        check_embedding_model: bool = True,
    ) -> None:
        self.embedding_model = embedding_model
        self.dim = embedding_dim
        self._index = NumpyIndex(embedding_dim)
        self._writer = MemoryWriter(embedding_model, embedding_dim)
        super().__init__(engine, embedding_dim=embedding_dim, vector_index=vector_index)
        if check_embedding_model:
            self._check_embedding_model()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        embedding_model: str,
        embedding_dim: int,
        connect_args: dict[str, Any] | None = None,
        vector_index: bool = False,
        check_embedding_model: bool = True,
    ) -> Store:
        return cls(
            make_engine(url, connect_args),
            embedding_model=embedding_model,
            embedding_dim=embedding_dim,
            vector_index=vector_index,
            check_embedding_model=check_embedding_model,
        )

    def _check_embedding_model(self) -> None:
        with self._read() as s:
            meta = {m.key: m.value for m in s.scalars(select(MetaRow))}
            has_memories = s.scalar(select(MemoryRow.id).limit(1)) is not None
        name, dim = meta.get("embedding_model"), meta.get("embedding_dim")
        if name is not None and (name != self.embedding_model or int(dim or 0) != self.dim) and has_memories:
            raise EmbeddingMismatchError(
                f"This database holds vectors from '{name}' ({dim} dimensions) but the configured embedder is "
                f"'{self.embedding_model}' ({self.dim}). Switch back, or run `python -m timemory reembed` "
                f"to re-embed every memory with the new model."
            )
        if name != self.embedding_model or dim != str(self.dim):
            self._set_meta({"embedding_model": self.embedding_model, "embedding_dim": str(self.dim)})

    def _after_user_write(self, user_id: str) -> None:
        self._index.invalidate(user_id)

    # ------------------------------------------------------------------ memories: reads
    def get_memory(self, user_id: str, memory_id: str) -> Memory:
        found = self.get_memories(user_id, [memory_id]).get(memory_id)
        if found is None:
            raise NotFoundError(f"No memory '{memory_id}' for user '{user_id}'.")
        return found

    def get_memories(self, user_id: str, memory_ids: Sequence[str]) -> dict[str, Memory]:
        if not memory_ids:
            return {}
        with self._read() as s:
            return self._fetch_memories(s, user_id, memory_ids)

    @staticmethod
    def _fetch_memories(s: Session, user_id: str, memory_ids: Sequence[str]) -> dict[str, Memory]:
        out: dict[str, Memory] = {}
        ids = list(dict.fromkeys(memory_ids))
        for start in range(0, len(ids), 500):
            rows = s.execute(_MEMORIES_BY_ID, {"user_id": user_id, "ids": ids[start : start + 500]})
            for r in rows:
                m = memory_from(r._mapping)
                out[m.id] = m
        return out

    def _filtered(
        self,
        stmt: Any,
        user_id: str,
        types: Sequence[str] | None,
        statuses: Sequence[str] | None,
        text_filter: str | None,
        session_id: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> Any:
        stmt = stmt.where(MemoryRow.user_id == user_id)
        if types is not None:
            stmt = stmt.where(MemoryRow.type.in_(list(types)))
        if statuses is not None:
            stmt = stmt.where(MemoryRow.status.in_(list(statuses)))
        if text_filter:
            stmt = stmt.where(MemoryRow.content.icontains(text_filter, autoescape=True))
        if session_id is not None:
            stmt = stmt.where(MemoryRow.source_session_id == session_id)
        if since is not None:
            stmt = stmt.where(MemoryRow.created_at >= naive_utc(since))
        if until is not None:
            stmt = stmt.where(MemoryRow.created_at <= naive_utc(until))
        return stmt

    def list_memories(
        self,
        user_id: str,
        *,
        types: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        text: str | None = None,
        session_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Memory]:
        stmt = self._filtered(
            select(*MEMORY_COLUMNS), user_id, types, statuses, text, session_id, since, until
        )
        stmt = stmt.order_by(MemoryRow.updated_at.desc(), MemoryRow.id).limit(limit).offset(offset)
        with self._read() as s:
            return [memory_from(r._mapping) for r in s.execute(stmt)]

    def count_memories(
        self,
        user_id: str,
        *,
        types: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        text: str | None = None,
        session_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        stmt = self._filtered(
            select(func.count()).select_from(MemoryRow), user_id, types, statuses, text, session_id, since, until
        )
        with self._read() as s:
            return int(s.scalar(stmt) or 0)

    def memory_embeddings(
        self, user_id: str, statuses: Sequence[str] | None = None
    ) -> tuple[list[Memory], np.ndarray]:
        """Memories with their vectors, oldest first (the embedding map draws these)."""
        stmt = (
            select(*MEMORY_COLUMNS, MemoryRow.embedding)
            .where(MemoryRow.user_id == user_id)
            .order_by(MemoryRow.created_at, MemoryRow.id)
        )
        if statuses is not None:
            stmt = stmt.where(MemoryRow.status.in_(list(statuses)))
        with self._read() as s:
            rows = s.execute(stmt).all()
        memories = [memory_from(r._mapping) for r in rows]
        if not rows:
            return memories, np.zeros((0, self.dim), np.float32)
        return memories, np.vstack([r.embedding for r in rows]).astype(np.float32)

    # ------------------------------------------------------------------ vector search
    def search(
        self,
        user_id: str,
        queries: np.ndarray,
        k: int,
        *,
        types: Sequence[str] | None = None,
        statuses: Sequence[str] | None = ("active",),
        version: int | None = None,
    ) -> list[list[tuple[Memory, float]]]:
        """Top-k memories of this user per query vector, as (memory, cosine similarity), best first.

        ``version`` is the user's ``memory_version`` when the caller has just read it (saves reading it again).
        """
        queries = self._check_queries(queries)
        if self.backend == "tidb":
            ranked = [self._tidb_rank(user_id, q, k, types, statuses) for q in queries]
            found = self.get_memories(user_id, [mid for row in ranked for mid, _ in row])
        else:
            with self._read() as s:  # one session for the version and the hits: a search is one round trip more
                current = self._version(s, user_id) if version is None else version
                entry = self._index.vectors(user_id, current, self._load_user_vectors)
                ranked = self._index.rank(entry, queries, k, types, statuses)
                found = self._fetch_memories(s, user_id, [mid for row in ranked for mid, _ in row])
        return [[(found[mid], score) for mid, score in row if mid in found] for row in ranked]

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
        """Top-k memories of this user for one query by ``mode``, each with its score parts. ``vectors`` is the
        query's unit vector (one row; may be None in keyword mode)."""
        words = term_words(query)
        vector = None if vectors is None else self._check_queries(vectors)[0]
        if self.backend == "tidb":
            return self._tidb_find(user_id, words, vector, k, mode, types, statuses)
        with self._read() as s:
            current = self._version(s, user_id) if version is None else version
            entry = self._index.vectors(user_id, current, self._load_user_vectors)
            ranked = self._index.find(entry, vector, list(words), k, mode, types, statuses)
            return self._hits(s, user_id, entry, ranked, words)

    def _hits(self, s: Session, user_id: str, entry: UserVectors, ranked: list[Ranked],
              words: dict[str, str]) -> list[SearchHit]:
        """The memories of ``ranked``, each with the query ``words`` it holds (as typed, not their stems)."""
        for r in ranked:
            r.breakdown.matched_terms = [words[t] for t in entry.keywords.matched(r.row, list(words))]
        ids = [entry.ids[r.row] for r in ranked]
        found = self._fetch_memories(s, user_id, ids)
        return [SearchHit(memory=found[mid], score=r.breakdown.fused, scores=r.breakdown)
                for mid, r in zip(ids, ranked, strict=True) if mid in found]

    def _tidb_find(self, user_id: str, words: dict[str, str], vector: np.ndarray | None, k: int,
                   mode: SearchMode, types: Sequence[str] | None, statuses: Sequence[str] | None) -> list[SearchHit]:
        """TiDB: vectors ranked in SQL, words by the user's keyword index (kept here, without the vectors)."""
        with self._read() as s:
            entry = self._index.vectors(user_id, self._version(s, user_id), self._load_user_texts)
        kw_rows, bm25 = self._index.keyword_hits(entry, list(words), self._index.mask(entry, types, statuses))
        keyword_ids = [entry.ids[r] for r in kw_rows]
        if mode == "keyword":
            ranked = rank_keyword(kw_rows, bm25, k)
        else:
            assert vector is not None
            nearest = dict(self._tidb_rank(user_id, vector, k if mode == "vector" else max(k, POOL), types,
                                           statuses))
            ids = [*nearest, *(mid for mid in keyword_ids if mid not in nearest)]
            cosine = nearest | self._tidb_cosine(user_id, vector, ids[len(nearest):])
            rows = np.array([entry.rows[mid] for mid in ids if mid in entry.rows], np.int64)
            scores = np.array([cosine[entry.ids[r]] for r in rows], np.float32)
            keyword = bm25_of(entry.n, kw_rows, bm25)[rows]
            if mode == "vector":
                ranked = rank_vector(rows, scores, k, keyword)
            else:
                ranked = fuse(rows, scores, keyword, float(bm25.max()) if len(bm25) else 0.0, k)
        with self._read() as s:
            return self._hits(s, user_id, entry, ranked, words)

    def _tidb_cosine(self, user_id: str, vector: np.ndarray, ids: Sequence[str]) -> dict[str, float]:
        if not ids:
            return {}
        with self._read() as s:
            rows: Sequence[Any] = s.execute(tidb_cosine_statement(user_id, vector, ids)).all()
        return {r[0]: 1.0 - float(r[1]) for r in rows}

    def _check_queries(self, queries: np.ndarray) -> np.ndarray:
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        if queries.shape[1] != self.dim:
            raise EmbeddingMismatchError(
                f"Query vector has {queries.shape[1]} dimensions; this database stores {self.dim} "
                f"('{self.embedding_model}'). Use the same embedder, or run `python -m timemory reembed`."
            )
        return queries

    def _load_user_vectors(
        self, user_id: str
    ) -> tuple[list[str], list[str], list[str], list[np.ndarray], list[str]]:
        with self._read() as s:
            rows = s.execute(
                select(MemoryRow.id, MemoryRow.type, MemoryRow.status, MemoryRow.embedding, MemoryRow.content)
                .where(MemoryRow.user_id == user_id)
                .order_by(MemoryRow.created_at, MemoryRow.id)  # rows in a fixed order: ties rank the same every load
            ).all()
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows], \
            [r[4] for r in rows]

    def _load_user_texts(
        self, user_id: str
    ) -> tuple[list[str], list[str], list[str], list[np.ndarray], list[str]]:
        """TiDB keeps the vectors in SQL: the cached entry holds zero-width rows and the keyword index."""
        with self._read() as s:
            rows = s.execute(
                select(MemoryRow.id, MemoryRow.type, MemoryRow.status, MemoryRow.content)
                .where(MemoryRow.user_id == user_id)
                .order_by(MemoryRow.created_at, MemoryRow.id)
            ).all()
        empty = np.zeros(0, np.float32)
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [empty for _ in rows], \
            [r[3] for r in rows]

    def _tidb_rank(
        self,
        user_id: str,
        query: np.ndarray,
        k: int,
        types: Sequence[str] | None,
        statuses: Sequence[str] | None,
    ) -> list[tuple[str, float]]:
        with self._read() as s:
            rows: Sequence[Any] = []
            if self._vector_index:
                stmt = tidb_search_statement(user_id, query, k, types=types, statuses=statuses, use_index=True)
                rows = s.execute(stmt).all()
            if len(rows) < k:  # the index path missed (user's rows not among the global nearest): exact scan
                stmt = tidb_search_statement(user_id, query, k, types=types, statuses=statuses, use_index=False)
                rows = s.execute(stmt).all()
        return [(r[0], 1.0 - float(r[1])) for r in rows]

    # ------------------------------------------------------------------ memories: writes
    def apply(
        self,
        user_id: str,
        ops: Sequence[Op],
        *,
        expected_version: int | None = None,
        run_id: str | None = None,
        lease: JobLease | None = None,
    ) -> list[AppliedChange]:
        """Apply all operations in one transaction, each with its event row; all or nothing. Under a job's
        ``lease``, the job is marked applied in the same transaction (and nothing lands if the lease was lost)."""
        check_user_id(user_id)
        before = self._index.peek(user_id) if self.backend != "tidb" else None
        with self._write(user_id, expected_version) as s:
            changes = self._writer.apply(s, user_id, ops, utcnow(), run_id)
            if lease is not None:
                self.mark_applied(s, lease, run_id or "")
            if before is not None:  # the touched rows as this transaction leaves them, to patch the cached matrix
                touched = [c.memory_id for c in changes] + [c.related_memory_id for c in changes if c.related_memory_id]
                rows = [(r[0], r[1], r[2], r[3], r[4]) for r in s.execute(
                    select(MemoryRow.id, MemoryRow.type, MemoryRow.status, MemoryRow.embedding,
                           MemoryRow.content).where(
                        MemoryRow.user_id == user_id, MemoryRow.id.in_(touched)))]
                locked = int(s.info["locked_version"])
        if before is not None:
            self._index.patch(user_id, before, locked, touched, rows)
        return changes

    def restore(self, user_id: str, items: Sequence[tuple[Memory, np.ndarray, Sequence[MemoryEvent]]]) -> None:
        """Write exported memories back with their own ids, times, links and events, in one transaction."""
        check_user_id(user_id)
        with self._write(user_id) as s:
            for memory, vector, events in items:
                self._writer.restore(s, user_id, memory, vector, events)

    def memory_texts(self, user_id: str) -> list[tuple[str, str]]:
        """(id, content) of every memory of the user, without vectors (``reembed`` reads these)."""
        with self._read() as s:
            return [(r[0], r[1]) for r in s.execute(
                select(MemoryRow.id, MemoryRow.content).where(MemoryRow.user_id == user_id).order_by(MemoryRow.id)
            )]

    def replace_embeddings(self, user_id: str, vectors: dict[str, np.ndarray]) -> None:
        """Swap vectors without touching content (``reembed``); no events, since no memory changed meaning."""
        with self._write(user_id) as s:
            for mid, vec in vectors.items():
                row = self._writer.owned(s, user_id, mid)
                row.embedding = self._writer.check_vector(vec)

    def reset_embedding_model(self, name: str, dim: int) -> None:
        self._set_meta({"embedding_model": name, "embedding_dim": str(dim)})

    # ------------------------------------------------------------------ history
    def history(self, user_id: str, memory_id: str) -> list[MemoryEvent]:
        with self._read() as s:
            rows = s.scalars(
                select(MemoryEventRow)
                .where(MemoryEventRow.user_id == user_id, MemoryEventRow.memory_id == memory_id)
                .order_by(MemoryEventRow.seq)
            ).all()
        if not rows:
            raise NotFoundError(f"No memory '{memory_id}' for user '{user_id}'.")
        return [event_from(r) for r in rows]

    def histories(self, user_id: str, memory_ids: Sequence[str]) -> dict[str, list[MemoryEvent]]:
        """The events of each of these memories, oldest first (ids without events are left out)."""
        out: dict[str, list[MemoryEvent]] = {}
        ids = list(dict.fromkeys(memory_ids))
        with self._read() as s:
            for start in range(0, len(ids), 500):
                rows = s.scalars(
                    select(MemoryEventRow)
                    .where(MemoryEventRow.user_id == user_id, MemoryEventRow.memory_id.in_(ids[start : start + 500]))
                    .order_by(MemoryEventRow.seq)
                )
                for r in rows:
                    out.setdefault(r.memory_id, []).append(event_from(r))
        return out

    def events(
        self, user_id: str, *, until: datetime | None = None, memory_ids: Sequence[str] | None = None
    ) -> list[MemoryEvent]:
        """The user's events in the order they happened (time, then write order), optionally up to ``until`` or for
        some memories only."""
        stmt = select(*EVENT_COLUMNS).where(MemoryEventRow.user_id == user_id)
        if until is not None:
            stmt = stmt.where(MemoryEventRow.created_at <= naive_utc(until))
        if memory_ids is not None:
            stmt = stmt.where(MemoryEventRow.memory_id.in_(list(memory_ids)))
        with self._read() as s:
            rows = s.execute(stmt.order_by(MemoryEventRow.created_at, MemoryEventRow.seq)).all()
        return [event_from_columns(r._mapping) for r in rows]  # columns, not ORM objects: 10k events load fast

    def run_events(self, user_id: str, run_id: str) -> list[MemoryEvent]:
        with self._read() as s:
            rows = s.scalars(
                select(MemoryEventRow)
                .where(MemoryEventRow.user_id == user_id, MemoryEventRow.run_id == run_id)
                .order_by(MemoryEventRow.seq)
            ).all()
        return [event_from(r) for r in rows]
