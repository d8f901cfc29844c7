"""Memories with their vectors and events: reads, the one write path (``apply``), history and time travel."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from timemory._validation import MemoryFilter, check_user_id
from timemory.errors import EmbeddingMismatchError, NotFoundError
from timemory.schemas import AppliedChange, JobLease, Memory, MemoryEvent
from timemory.store._database import Database, MemoryState, UserWrite
from timemory.store._jobs import JobQueue
from timemory.store._models import MemoryEventRow, MemoryRow, utcnow
from timemory.store._ops import Op
from timemory.store._rows import EVENT_COLUMNS, MEMORY_COLUMNS, event_from, event_from_columns, memory_from, naive_utc
from timemory.store._writes import MemoryWriter

# Built once: a search fetches its hits with it, and building the statement cost more than running it.
_MEMORIES_BY_ID = select(*MEMORY_COLUMNS).where(MemoryRow.user_id == bindparam("user_id"),
                                               MemoryRow.id.in_(bindparam("ids", expanding=True)))
_STATE_COLUMNS = (MemoryRow.id, MemoryRow.type, MemoryRow.status, MemoryRow.embedding, MemoryRow.content)


class MemoryRepository:
    def __init__(self, db: Database, *, embedding_model: str, embedding_dim: int) -> None:
        self._db = db
        self.embedding_model = embedding_model
        self.dim = embedding_dim
        self._writer = MemoryWriter(embedding_model, embedding_dim)

    def check_embedding_model(self) -> None:
        """Refuse to mix vectors of two models in one database; record the model on first use."""
        meta = self._db.meta()
        with self._db.read() as s:
            has_memories = s.scalar(select(MemoryRow.id).limit(1)) is not None
        name, dim = meta.get("embedding_model"), meta.get("embedding_dim")
        if name is not None and (name != self.embedding_model or int(dim or 0) != self.dim) and has_memories:
            raise EmbeddingMismatchError(
                f"This database holds vectors from '{name}' ({dim} dimensions) but the configured embedder is "
                f"'{self.embedding_model}' ({self.dim}). Switch back, or run `python -m timemory reembed` "
                f"to re-embed every memory with the new model."
            )
        if name != self.embedding_model or dim != str(self.dim):
            self.reset_embedding_model(self.embedding_model, self.dim)

    def reset_embedding_model(self, name: str, dim: int) -> None:
        self._db.set_meta({"embedding_model": name, "embedding_dim": str(dim)})

    def check_queries(self, queries: np.ndarray) -> np.ndarray:
        """Query vectors as a float32 matrix of this database's width."""
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        if queries.shape[1] != self.dim:
            raise EmbeddingMismatchError(
                f"Query vector has {queries.shape[1]} dimensions; this database stores {self.dim} "
                f"('{self.embedding_model}'). Use the same embedder, or run `python -m timemory reembed`."
            )
        return queries

    # ------------------------------------------------------------------ reads
    def get(self, user_id: str, memory_id: str) -> Memory:
        found = self.get_many(user_id, [memory_id]).get(memory_id)
        if found is None:
            raise NotFoundError(f"No memory '{memory_id}' for user '{user_id}'.")
        return found

    def get_many(self, user_id: str, memory_ids: Sequence[str]) -> dict[str, Memory]:
        if not memory_ids:
            return {}
        with self._db.read() as s:
            return self.fetch(s, user_id, memory_ids)

    @staticmethod
    def fetch(s: Session, user_id: str, memory_ids: Sequence[str]) -> dict[str, Memory]:
        """The user's memories among these ids, read in an open session."""
        out: dict[str, Memory] = {}
        ids = builtins.list(dict.fromkeys(memory_ids))
        for start in range(0, len(ids), 500):
            rows = s.execute(_MEMORIES_BY_ID, {"user_id": user_id, "ids": ids[start : start + 500]})
            for r in rows:
                m = memory_from(r._mapping)
                out[m.id] = m
        return out

    @staticmethod
    def _filtered(stmt: Any, user_id: str, where: MemoryFilter) -> Any:
        stmt = stmt.where(MemoryRow.user_id == user_id)
        if where.types is not None:
            stmt = stmt.where(MemoryRow.type.in_(builtins.list(where.types)))
        if where.statuses is not None:
            stmt = stmt.where(MemoryRow.status.in_(builtins.list(where.statuses)))
        if where.text:
            stmt = stmt.where(MemoryRow.content.icontains(where.text, autoescape=True))
        if where.session_id is not None:
            stmt = stmt.where(MemoryRow.source_session_id == where.session_id)
        if where.since is not None:
            stmt = stmt.where(MemoryRow.created_at >= naive_utc(where.since))
        if where.until is not None:
            stmt = stmt.where(MemoryRow.created_at <= naive_utc(where.until))
        return stmt

    def list(self, user_id: str, where: MemoryFilter | None = None, *, limit: int = 100,
             offset: int = 0) -> builtins.list[Memory]:
        """The user's memories that ``where`` lets through (all by default), most recently changed first."""
        stmt = self._filtered(select(*MEMORY_COLUMNS), user_id, where or MemoryFilter())
        stmt = stmt.order_by(MemoryRow.updated_at.desc(), MemoryRow.id).limit(limit).offset(offset)
        with self._db.read() as s:
            return [memory_from(r._mapping) for r in s.execute(stmt)]

    def with_subject(self, user_id: str, subject: str, *,
                     limit: int = 3) -> builtins.list[tuple[Memory, np.ndarray]]:
        """The user's active memories with this subject key and their vectors, most recently changed first."""
        stmt = (select(*MEMORY_COLUMNS, MemoryRow.embedding)
                .where(MemoryRow.user_id == user_id, MemoryRow.subject == subject, MemoryRow.status == "active")
                .order_by(MemoryRow.updated_at.desc(), MemoryRow.id).limit(limit))
        with self._db.read() as s:
            return [(memory_from(r._mapping), np.asarray(r.embedding, dtype=np.float32)) for r in s.execute(stmt)]

    def count(self, user_id: str, where: MemoryFilter | None = None) -> int:
        stmt = self._filtered(select(func.count()).select_from(MemoryRow), user_id, where or MemoryFilter())
        with self._db.read() as s:
            return int(s.scalar(stmt) or 0)

    def with_vectors(
        self, user_id: str, statuses: Sequence[str] | None = None
    ) -> tuple[builtins.list[Memory], np.ndarray]:
        """Memories with their vectors, oldest first (the embedding map draws these)."""
        stmt = (
            select(*MEMORY_COLUMNS, MemoryRow.embedding)
            .where(MemoryRow.user_id == user_id)
            .order_by(MemoryRow.created_at, MemoryRow.id)
        )
        if statuses is not None:
            stmt = stmt.where(MemoryRow.status.in_(builtins.list(statuses)))
        with self._db.read() as s:
            rows = s.execute(stmt).all()
        memories = [memory_from(r._mapping) for r in rows]
        if not rows:
            return memories, np.zeros((0, self.dim), np.float32)
        return memories, np.vstack([r.embedding for r in rows]).astype(np.float32)

    def states(self, user_id: str, *, vectors: bool = True) -> builtins.list[MemoryState]:
        """(id, type, status, vector, content) of every memory of the user in a fixed order (creation, then id), so
        ties rank the same on every load; without ``vectors`` the vectors are empty (TiDB ranks them in SQL)."""
        columns = _STATE_COLUMNS if vectors else (MemoryRow.id, MemoryRow.type, MemoryRow.status, MemoryRow.content)
        with self._db.read() as s:
            rows = s.execute(select(*columns).where(MemoryRow.user_id == user_id)
                             .order_by(MemoryRow.created_at, MemoryRow.id)).all()
        if vectors:
            return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]
        empty = np.zeros(0, np.float32)
        return [(r[0], r[1], r[2], empty, r[3]) for r in rows]

    def texts(self, user_id: str) -> builtins.list[tuple[str, str]]:
        """(id, content) of every memory of the user, without vectors (``reembed`` reads these)."""
        with self._db.read() as s:
            return [(r[0], r[1]) for r in s.execute(
                select(MemoryRow.id, MemoryRow.content).where(MemoryRow.user_id == user_id).order_by(MemoryRow.id)
            )]

    # ------------------------------------------------------------------ writes
    def apply(
        self,
        user_id: str,
        ops: Sequence[Op],
        *,
        expected_version: int | None = None,
        run_id: str | None = None,
        lease: JobLease | None = None,
    ) -> builtins.list[AppliedChange]:
        """Apply all operations in one transaction, each with its event row; all or nothing. Under a job's
        ``lease``, the job is marked applied in the same transaction (and nothing lands if the lease was lost).
        The touched rows, as committed, go to the database's listeners when one keeps this user's rows (a search
        index patches itself with them); otherwise they are not read."""
        check_user_id(user_id)
        with self._db.write(user_id, expected_version) as s:
            changes = self._writer.apply(s, user_id, ops, utcnow(), run_id)
            if lease is not None:
                JobQueue.mark_applied(s, lease, run_id or "")
            if self._db.wants_rows(user_id):
                touched = [c.memory_id for c in changes] + [c.related_memory_id for c in changes
                                                            if c.related_memory_id]
                rows = [(r[0], r[1], r[2], r[3], r[4]) for r in s.execute(
                    select(*_STATE_COLUMNS).where(MemoryRow.user_id == user_id, MemoryRow.id.in_(touched)))]
                s.info["written"] = UserWrite(user_id, int(s.info["locked_version"]), touched, rows)
        return changes

    def restore(self, user_id: str, items: Sequence[tuple[Memory, np.ndarray, Sequence[MemoryEvent]]]) -> None:
        """Write exported memories back with their own ids, times, links and events, in one transaction."""
        check_user_id(user_id)
        with self._db.write(user_id) as s:
            for memory, vector, events in items:
                self._writer.restore(s, user_id, memory, vector, events)

    def replace_vectors(self, user_id: str, vectors: dict[str, np.ndarray]) -> None:
        """Swap vectors without touching content (``reembed``); no events, since no memory changed meaning."""
        with self._db.write(user_id) as s:
            for mid, vec in vectors.items():
                row = self._writer.owned(s, user_id, mid)
                row.embedding = self._writer.check_vector(vec)

    # ------------------------------------------------------------------ history
    def history(self, user_id: str, memory_id: str) -> builtins.list[MemoryEvent]:
        with self._db.read() as s:
            rows = s.scalars(
                select(MemoryEventRow)
                .where(MemoryEventRow.user_id == user_id, MemoryEventRow.memory_id == memory_id)
                .order_by(MemoryEventRow.seq)
            ).all()
        if not rows:
            raise NotFoundError(f"No memory '{memory_id}' for user '{user_id}'.")
        return [event_from(r) for r in rows]

    def histories(self, user_id: str, memory_ids: Sequence[str]) -> dict[str, builtins.list[MemoryEvent]]:
        """The events of each of these memories, oldest first (ids without events are left out)."""
        out: dict[str, builtins.list[MemoryEvent]] = {}
        ids = builtins.list(dict.fromkeys(memory_ids))
        with self._db.read() as s:
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
    ) -> builtins.list[MemoryEvent]:
        """The user's events in the order they happened (time, then write order), optionally up to ``until`` or for
        some memories only."""
        stmt = select(*EVENT_COLUMNS).where(MemoryEventRow.user_id == user_id)
        if until is not None:
            stmt = stmt.where(MemoryEventRow.created_at <= naive_utc(until))
        if memory_ids is not None:
            stmt = stmt.where(MemoryEventRow.memory_id.in_(builtins.list(memory_ids)))
        with self._db.read() as s:
            rows = s.execute(stmt.order_by(MemoryEventRow.created_at, MemoryEventRow.seq)).all()
        return [event_from_columns(r._mapping) for r in rows]  # columns, not ORM objects: 10k events load fast

    def run_events(self, user_id: str, run_id: str) -> builtins.list[MemoryEvent]:
        with self._db.read() as s:
            rows = s.scalars(
                select(MemoryEventRow)
                .where(MemoryEventRow.user_id == user_id, MemoryEventRow.run_id == run_id)
                .order_by(MemoryEventRow.seq)
            ).all()
        return [event_from(r) for r in rows]
