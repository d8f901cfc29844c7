"""The storage interface: one class over SQLAlchemy for SQLite, MySQL-protocol servers and TiDB.

Concurrency: every write runs in one transaction that first takes a per-user lock — ``BEGIN IMMEDIATE`` on SQLite
(one writer per file), ``SELECT … FOR UPDATE`` on the user's row on MySQL/TiDB. A caller that planned its changes
against a ``memory_version`` passes it as ``expected_version``; if another writer moved it meanwhile, the transaction
is rolled back with :class:`ConcurrentUpdateError` and the caller re-plans. Every write bumps the version, which also
invalidates the in-process vector cache (and those of other processes, which compare it on each search).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, delete, func, inspect, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from ..errors import (
    ConcurrentUpdateError,
    DatabaseError,
    EmbeddingMismatchError,
    NotFoundError,
    ValidationError,
)
from ..schemas import (
    MEMORY_STATUSES,
    MEMORY_TYPES,
    AppliedChange,
    ChatSession,
    Memory,
    MemoryEvent,
    Message,
    PipelineResult,
    UserSummary,
)
from .engine import SQLITE_BEGIN, Backend, detect_backend, enable_native_vectors, make_engine
from .models import (
    Base,
    MemoryEventRow,
    MemoryRow,
    MessageRow,
    MetaRow,
    PipelineRunRow,
    SessionRow,
    UserRow,
    utcnow,
)
from .ops import AddMemory, ChangeMemory, DeleteMemory, Op
from .vector import NumpyIndex, tidb_search_statement, tidb_vector_index_ddl

log = logging.getLogger(__name__)

MAX_USER_ID = 128


def aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def naive_utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


def new_id() -> str:
    return str(uuid.uuid4())


def check_user_id(user_id: str) -> str:
    if not isinstance(user_id, str) or not user_id.strip():
        raise ValidationError("user_id must be a non-empty string.")
    if len(user_id) > MAX_USER_ID:
        raise ValidationError(f"user_id is longer than {MAX_USER_ID} characters.")
    return user_id


def to_memory(row: MemoryRow) -> Memory:
    return Memory(
        id=row.id,
        user_id=row.user_id,
        content=row.content,
        type=row.type,  # type: ignore[arg-type]
        status=row.status,  # type: ignore[arg-type]
        created_at=aware(row.created_at),  # type: ignore[arg-type]
        updated_at=aware(row.updated_at),  # type: ignore[arg-type]
        source_message_ids=list(row.source_message_ids or []),
        source_session_id=row.source_session_id,
        superseded_by=row.superseded_by,
        outdated_at=aware(row.outdated_at),
    )


def to_event(row: MemoryEventRow) -> MemoryEvent:
    return MemoryEvent(
        id=str(row.seq),
        memory_id=row.memory_id,
        user_id=row.user_id,
        event=row.event,  # type: ignore[arg-type]
        actor=row.actor,  # type: ignore[arg-type]
        old_content=row.old_content,
        new_content=row.new_content,
        old_status=row.old_status,
        new_status=row.new_status,
        old_type=row.old_type,
        new_type=row.new_type,
        reason=row.reason,
        source_message_ids=list(row.source_message_ids or []),
        related_memory_id=row.related_memory_id,
        created_at=aware(row.created_at),  # type: ignore[arg-type]
    )


_MEMORY_COLUMNS_NO_VECTOR = [c for c in MemoryRow.__table__.columns if c.name != "embedding"]


class Store:
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
        self.engine = engine
        self.embedding_model = embedding_model
        self.dim = embedding_dim
        try:
            self.backend: Backend = detect_backend(engine)
        except SQLAlchemyError as exc:
            raise DatabaseError(f"Cannot connect to the database: {_brief(exc)}") from exc
        if self.backend == "tidb":
            enable_native_vectors(engine, embedding_dim)
        self._index = NumpyIndex(embedding_dim)
        self._vector_index = vector_index and self.backend == "tidb"
        self._local = threading.local()
        self._create_schema()
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

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ schema & embedding model bookkeeping
    def _create_schema(self) -> None:
        try:
            Base.metadata.create_all(self.engine)
            if self._vector_index:
                self._ensure_vector_index()
        except SQLAlchemyError as exc:
            raise DatabaseError(f"Could not create the TiMemory tables: {_brief(exc)}") from exc

    def _ensure_vector_index(self) -> None:
        with self.engine.begin() as conn:
            indexes = {ix["name"] for ix in inspect(conn).get_indexes("memories")}
            if any(name and "cosine" in name for name in indexes):
                return
            for ddl in tidb_vector_index_ddl():
                conn.execute(text(ddl))

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

    def _set_meta(self, values: dict[str, str]) -> None:
        with self._write() as s:
            for key, value in values.items():
                s.merge(MetaRow(key=key, value=value))

    def meta(self) -> dict[str, str]:
        with self._read() as s:
            return {m.key: m.value for m in s.scalars(select(MetaRow))}

    # ------------------------------------------------------------------ sessions of the ORM
    @contextmanager
    def _read(self) -> Iterator[Session]:
        try:
            with Session(self.engine, expire_on_commit=False) as s:
                yield s
        except SQLAlchemyError as exc:
            raise DatabaseError(f"Database read failed: {_brief(exc)}") from exc

    @contextmanager
    def _write(self, user_id: str | None = None, expected_version: int | None = None) -> Iterator[Session]:
        """One write transaction; with ``user_id`` it holds that user's lock and bumps the memory version."""
        try:
            with self.engine.connect() as conn:
                if self.backend == "sqlite":
                    conn = conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
                with Session(bind=conn, expire_on_commit=False) as s, s.begin():
                    if user_id is not None:
                        version = self._lock_user(s, user_id)
                        if expected_version is not None and version != expected_version:
                            raise ConcurrentUpdateError(
                                "Another writer changed this user's memories meanwhile; plan again."
                            )
                    yield s
                    if user_id is not None:
                        s.execute(
                            update(UserRow)
                            .where(UserRow.id == user_id)
                            .values(memory_version=UserRow.memory_version + 1)
                        )
        except (OperationalError, IntegrityError) as exc:
            raise DatabaseError(f"Database write failed and was rolled back: {_brief(exc)}") from exc
        except SQLAlchemyError as exc:
            raise DatabaseError(f"Database write failed and was rolled back: {_brief(exc)}") from exc
        finally:
            if user_id is not None:
                self._index.invalidate(user_id)

    def _lock_user(self, s: Session, user_id: str) -> int:
        stmt = select(UserRow.memory_version).where(UserRow.id == user_id)
        if self.backend != "sqlite":
            stmt = stmt.with_for_update()
        version = s.scalar(stmt)
        if version is None:
            s.add(UserRow(id=user_id, created_at=utcnow(), memory_version=0))
            s.flush()
            version = 0
        return int(version)

    # ------------------------------------------------------------------ users
    def ensure_user(self, user_id: str) -> None:
        check_user_id(user_id)
        with self._read() as s:
            if s.get(UserRow, user_id) is not None:
                return
        try:
            with self._write() as s:
                if s.get(UserRow, user_id) is None:
                    s.add(UserRow(id=user_id, created_at=utcnow(), memory_version=0))
        except DatabaseError:
            with self._read() as s:  # another writer created it first
                if s.get(UserRow, user_id) is None:
                    raise

    def memory_version(self, user_id: str) -> int:
        with self._read() as s:
            return int(s.scalar(select(UserRow.memory_version).where(UserRow.id == user_id)) or 0)

    def list_users(self) -> list[UserSummary]:
        with self._read() as s:
            users = s.scalars(select(UserRow).order_by(UserRow.id)).all()
            sessions = dict(
                s.execute(select(SessionRow.user_id, func.count()).group_by(SessionRow.user_id)).all()
            )
            counts: dict[tuple[str, str], int] = {
                (u, st): n
                for u, st, n in s.execute(
                    select(MemoryRow.user_id, MemoryRow.status, func.count()).group_by(
                        MemoryRow.user_id, MemoryRow.status
                    )
                )
            }
        return [
            UserSummary(
                id=u.id,
                created_at=aware(u.created_at),  # type: ignore[arg-type]
                sessions=sessions.get(u.id, 0),
                memories_active=counts.get((u.id, "active"), 0),
                memories_outdated=counts.get((u.id, "outdated"), 0),
            )
            for u in users
        ]

    def delete_user(self, user_id: str) -> None:
        """Remove every row of this user: memories, events, sessions, messages, runs."""
        check_user_id(user_id)
        with self._write(user_id) as s:
            for model in (MemoryRow, MemoryEventRow, MessageRow, SessionRow, PipelineRunRow):
                s.execute(delete(model).where(model.user_id == user_id))  # type: ignore[attr-defined]
            s.execute(delete(UserRow).where(UserRow.id == user_id))

    # ------------------------------------------------------------------ memories: reads
    def get_memory(self, user_id: str, memory_id: str) -> Memory:
        with self._read() as s:
            row = s.execute(
                select(*_MEMORY_COLUMNS_NO_VECTOR).where(MemoryRow.id == memory_id, MemoryRow.user_id == user_id)
            ).first()
        if row is None:
            raise NotFoundError(f"No memory '{memory_id}' for user '{user_id}'.")
        return _memory_from_mapping(row._mapping)

    def get_memories(self, user_id: str, memory_ids: Sequence[str]) -> dict[str, Memory]:
        if not memory_ids:
            return {}
        out: dict[str, Memory] = {}
        ids = list(dict.fromkeys(memory_ids))
        with self._read() as s:
            for start in range(0, len(ids), 500):
                rows = s.execute(
                    select(*_MEMORY_COLUMNS_NO_VECTOR).where(
                        MemoryRow.user_id == user_id, MemoryRow.id.in_(ids[start : start + 500])
                    )
                )
                for r in rows:
                    m = _memory_from_mapping(r._mapping)
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
            select(*_MEMORY_COLUMNS_NO_VECTOR), user_id, types, statuses, text, session_id, since, until
        )
        stmt = stmt.order_by(MemoryRow.updated_at.desc(), MemoryRow.id).limit(limit).offset(offset)
        with self._read() as s:
            return [_memory_from_mapping(r._mapping) for r in s.execute(stmt)]

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
        """Memories with their vectors (for the map and for re-embedding)."""
        stmt = select(MemoryRow).where(MemoryRow.user_id == user_id).order_by(MemoryRow.created_at, MemoryRow.id)
        if statuses is not None:
            stmt = stmt.where(MemoryRow.status.in_(list(statuses)))
        with self._read() as s:
            rows = s.scalars(stmt).all()
            memories = [to_memory(r) for r in rows]
            matrix = (
                np.vstack([r.embedding for r in rows]).astype(np.float32)
                if rows
                else np.zeros((0, self.dim), np.float32)
            )
        return memories, matrix

    # ------------------------------------------------------------------ vector search
    def search(
        self,
        user_id: str,
        queries: np.ndarray,
        k: int,
        *,
        types: Sequence[str] | None = None,
        statuses: Sequence[str] | None = ("active",),
    ) -> list[list[tuple[Memory, float]]]:
        """Top-k memories of this user per query vector, as (memory, cosine similarity), best first."""
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        if queries.shape[1] != self.dim:
            raise EmbeddingMismatchError(
                f"Query vector has {queries.shape[1]} dimensions; this database stores {self.dim} "
                f"('{self.embedding_model}'). Use the same embedder, or run `python -m timemory reembed`."
            )
        if self.backend == "tidb":
            ranked = [self._tidb_rank(user_id, q, k, types, statuses) for q in queries]
        else:
            entry = self._index.vectors(user_id, self.memory_version(user_id), self._load_user_vectors)
            ranked = NumpyIndex.rank(entry, queries, k, types, statuses)
        found = self.get_memories(user_id, [mid for row in ranked for mid, _ in row])
        return [[(found[mid], score) for mid, score in row if mid in found] for row in ranked]

    def _load_user_vectors(self, user_id: str) -> tuple[list[str], list[str], list[str], list[np.ndarray]]:
        with self._read() as s:
            rows = s.execute(
                select(MemoryRow.id, MemoryRow.type, MemoryRow.status, MemoryRow.embedding).where(
                    MemoryRow.user_id == user_id
                )
            ).all()
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]

    def _tidb_rank(
        self,
        user_id: str,
        query: np.ndarray,
        k: int,
        types: Sequence[str] | None,
        statuses: Sequence[str] | None,
    ) -> list[tuple[str, float]]:
        with self._read() as s:
            rows = []
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
    ) -> list[AppliedChange]:
        """Apply all operations in one transaction, each with its event row; all or nothing."""
        check_user_id(user_id)
        changes: list[AppliedChange] = []
        with self._write(user_id, expected_version) as s:
            now = utcnow()
            for op in ops:
                if isinstance(op, AddMemory):
                    changes.extend(self._add(s, user_id, op, now, run_id))
                elif isinstance(op, ChangeMemory):
                    changes.append(self._change(s, user_id, op, now, run_id))
                elif isinstance(op, DeleteMemory):
                    changes.append(self._delete(s, user_id, op, now, run_id))
                else:  # pragma: no cover - typing guards this
                    raise ValidationError(f"Unknown operation {op!r}")
                s.flush()
        return changes

    def _owned(self, s: Session, user_id: str, memory_id: str) -> MemoryRow:
        row = s.get(MemoryRow, memory_id)
        if row is None or row.user_id != user_id:
            raise NotFoundError(f"No memory '{memory_id}' for user '{user_id}'.")
        return row

    def _check_vector(self, embedding: np.ndarray) -> np.ndarray:
        vec = np.asarray(embedding, dtype=np.float32).ravel()
        if vec.shape[0] != self.dim:
            raise EmbeddingMismatchError(
                f"Embedding has {vec.shape[0]} dimensions; this database stores {self.dim} "
                f"('{self.embedding_model}'). Run `python -m timemory reembed` after changing embedders."
            )
        if not np.all(np.isfinite(vec)):
            raise ValidationError("Embedding contains NaN or infinite values.")
        return vec

    def _add(self, s: Session, user_id: str, op: AddMemory, now: datetime, run_id: str | None) -> list[AppliedChange]:
        _check_type_status(op.type, op.status)
        created = naive_utc(op.created_at) or now
        mid = op.memory_id or new_id()
        if op.memory_id and s.get(MemoryRow, mid) is not None:
            raise ValidationError(f"A memory with id '{mid}' already exists.")
        row = MemoryRow(
            id=mid,
            user_id=user_id,
            content=op.content,
            type=op.type,
            status=op.status,
            embedding=self._check_vector(op.embedding),
            created_at=created,
            updated_at=naive_utc(op.updated_at) or created,
            source_message_ids=list(op.source_message_ids),
            source_session_id=op.source_session_id,
            superseded_by=op.superseded_by,
            outdated_at=(naive_utc(op.updated_at) or created) if op.status == "outdated" else None,
        )
        s.add(row)
        s.add(
            MemoryEventRow(
                memory_id=mid, user_id=user_id, event="ADD", actor=op.actor, new_content=op.content,
                new_status=op.status, new_type=op.type, reason=op.reason, source_message_ids=list(op.source_message_ids),
                run_id=run_id, created_at=created,
            )
        )
        changes = [AppliedChange(event="ADD", memory_id=mid, content=op.content, reason=op.reason)]
        for old_id in dict.fromkeys(op.supersedes):
            old = self._owned(s, user_id, old_id)
            old_status = old.status
            old.status, old.superseded_by, old.outdated_at, old.updated_at = "outdated", mid, created, created
            s.add(
                MemoryEventRow(
                    memory_id=old_id, user_id=user_id, event="OUTDATE", actor=op.actor, old_content=old.content,
                    new_content=old.content, old_status=old_status, new_status="outdated", reason=op.reason,
                    source_message_ids=list(op.source_message_ids), related_memory_id=mid, run_id=run_id,
                    created_at=created,
                )
            )
            changes.append(
                AppliedChange(event="OUTDATE", memory_id=old_id, content=old.content, related_memory_id=mid,
                              reason=op.reason)
            )
        return changes

    def _change(self, s: Session, user_id: str, op: ChangeMemory, now: datetime, run_id: str | None) -> AppliedChange:
        row = self._owned(s, user_id, op.memory_id)
        old_content, old_status, old_type = row.content, row.status, row.type
        _check_type_status(op.type or row.type, op.status or row.status)
        if op.content is not None and op.content != row.content:
            if op.embedding is None:
                raise ValidationError("New content needs its new embedding.")
            row.content = op.content
            row.embedding = self._check_vector(op.embedding)
        if op.type is not None:
            row.type = op.type
        event = op.event
        if op.status is not None and op.status != row.status:
            row.status = op.status
            if op.status == "outdated":
                row.outdated_at = now
                event = "OUTDATE" if event == "EDIT" and op.content is None and op.type is None else event
            else:
                row.outdated_at = None
                row.superseded_by = None
                event = "REACTIVATE" if event == "EDIT" and op.content is None and op.type is None else event
        if op.source_message_ids:
            row.source_message_ids = list(dict.fromkeys([*(row.source_message_ids or []), *op.source_message_ids]))
        row.updated_at = now
        s.add(
            MemoryEventRow(
                memory_id=row.id, user_id=user_id, event=event, actor=op.actor, old_content=old_content,
                new_content=row.content, old_status=old_status, new_status=row.status, old_type=old_type,
                new_type=row.type, reason=op.reason, source_message_ids=list(op.source_message_ids), run_id=run_id,
                created_at=now,
            )
        )
        return AppliedChange(
            event=event, memory_id=row.id, content=row.content, old_content=old_content, reason=op.reason  # type: ignore[arg-type]
        )

    def _delete(self, s: Session, user_id: str, op: DeleteMemory, now: datetime, run_id: str | None) -> AppliedChange:
        row = self._owned(s, user_id, op.memory_id)
        s.add(
            MemoryEventRow(
                memory_id=row.id, user_id=user_id, event="DELETE", actor=op.actor, old_content=row.content,
                old_status=row.status, old_type=row.type, reason=op.reason, run_id=run_id, created_at=now,
            )
        )
        s.execute(
            update(MemoryRow)
            .where(MemoryRow.user_id == user_id, MemoryRow.superseded_by == row.id)
            .values(superseded_by=None)
        )
        content = row.content
        s.delete(row)
        return AppliedChange(event="DELETE", memory_id=op.memory_id, old_content=content, reason=op.reason)

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
                row = self._owned(s, user_id, mid)
                row.embedding = self._check_vector(vec)

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
        return [to_event(r) for r in rows]

    def recent_events(self, user_id: str, limit: int = 100) -> list[MemoryEvent]:
        with self._read() as s:
            rows = s.scalars(
                select(MemoryEventRow)
                .where(MemoryEventRow.user_id == user_id)
                .order_by(MemoryEventRow.seq.desc())
                .limit(limit)
            ).all()
        return [to_event(r) for r in rows]

    def count_events(self, user_id: str) -> int:
        with self._read() as s:
            return int(s.scalar(select(func.count()).where(MemoryEventRow.user_id == user_id)) or 0)

    # ------------------------------------------------------------------ sessions & messages
    def create_session(self, user_id: str, title: str = "New chat", created_at: datetime | None = None) -> ChatSession:
        self.ensure_user(user_id)
        when = naive_utc(created_at) or utcnow()
        row = SessionRow(id=new_id(), user_id=user_id, title=_clean_title(title), created_at=when, updated_at=when)
        with self._write() as s:
            s.add(row)
        return self._session(row, 0)

    def get_session(self, user_id: str, session_id: str) -> ChatSession:
        with self._read() as s:
            row = s.get(SessionRow, session_id)
            if row is None or row.user_id != user_id:
                raise NotFoundError(f"No chat session '{session_id}' for user '{user_id}'.")
            n = s.scalar(select(func.count()).where(MessageRow.session_id == session_id)) or 0
        return self._session(row, int(n))

    def list_sessions(self, user_id: str) -> list[ChatSession]:
        with self._read() as s:
            rows = s.scalars(
                select(SessionRow).where(SessionRow.user_id == user_id).order_by(SessionRow.updated_at.desc())
            ).all()
            counts = dict(
                s.execute(
                    select(MessageRow.session_id, func.count())
                    .where(MessageRow.user_id == user_id)
                    .group_by(MessageRow.session_id)
                ).all()
            )
        return [self._session(r, int(counts.get(r.id, 0))) for r in rows]

    def rename_session(self, user_id: str, session_id: str, title: str) -> ChatSession:
        with self._write() as s:
            row = s.get(SessionRow, session_id)
            if row is None or row.user_id != user_id:
                raise NotFoundError(f"No chat session '{session_id}' for user '{user_id}'.")
            row.title = _clean_title(title)
        return self.get_session(user_id, session_id)

    def delete_session(self, user_id: str, session_id: str) -> None:
        """Delete the session and its messages; memories learnt from it stay (their provenance keeps the ids)."""
        with self._write() as s:
            row = s.get(SessionRow, session_id)
            if row is None or row.user_id != user_id:
                raise NotFoundError(f"No chat session '{session_id}' for user '{user_id}'.")
            s.execute(delete(MessageRow).where(MessageRow.user_id == user_id, MessageRow.session_id == session_id))
            s.delete(row)

    def save_messages(self, user_id: str, session_id: str | None, messages: Sequence[dict[str, Any]]) -> list[Message]:
        """Store messages; a message whose id this user already has is kept as it is (re-ingest is idempotent)."""
        self.ensure_user(user_id)
        saved: list[Message] = []
        with self._write() as s:
            if session_id is not None:
                sess = s.get(SessionRow, session_id)
                if sess is None or sess.user_id != user_id:
                    raise NotFoundError(f"No chat session '{session_id}' for user '{user_id}'.")
            for m in messages:
                mid = str(m.get("id") or new_id())
                existing = s.scalar(
                    select(MessageRow).where(MessageRow.user_id == user_id, MessageRow.message_id == mid)
                )
                if existing is None:
                    existing = MessageRow(
                        user_id=user_id, message_id=mid, session_id=session_id, role=m["role"],
                        content=m["content"], created_at=naive_utc(m.get("created_at")) or utcnow(),
                    )
                    s.add(existing)
                    s.flush()
                saved.append(_message(existing))
            if session_id is not None and messages:
                s.execute(update(SessionRow).where(SessionRow.id == session_id).values(updated_at=utcnow()))
        return saved

    def list_messages(self, user_id: str, session_id: str, limit: int | None = None) -> list[Message]:
        stmt = (
            select(MessageRow)
            .where(MessageRow.user_id == user_id, MessageRow.session_id == session_id)
            .order_by(MessageRow.seq)
        )
        with self._read() as s:
            rows = s.scalars(stmt).all()
        if limit is not None:
            rows = rows[-limit:]
        return [_message(r) for r in rows]

    def get_messages(self, user_id: str, message_ids: Sequence[str]) -> list[Message]:
        if not message_ids:
            return []
        with self._read() as s:
            rows = s.scalars(
                select(MessageRow)
                .where(MessageRow.user_id == user_id, MessageRow.message_id.in_(list(message_ids)))
                .order_by(MessageRow.seq)
            ).all()
        return [_message(r) for r in rows]

    @staticmethod
    def _session(row: SessionRow, n: int) -> ChatSession:
        return ChatSession(
            id=row.id, user_id=row.user_id, title=row.title, created_at=aware(row.created_at),  # type: ignore[arg-type]
            updated_at=aware(row.updated_at), message_count=n,  # type: ignore[arg-type]
        )

    # ------------------------------------------------------------------ pipeline runs
    def save_run(self, result: PipelineResult) -> None:
        with self._write() as s:
            s.add(
                PipelineRunRow(
                    id=result.run_id, user_id=result.user_id, session_id=result.session_id, status=result.status,
                    created_at=naive_utc(result.created_at) or utcnow(), trace=result.model_dump(mode="json"),
                )
            )

    def list_runs(self, user_id: str, limit: int = 20, session_id: str | None = None) -> list[PipelineResult]:
        stmt = select(PipelineRunRow).where(PipelineRunRow.user_id == user_id)
        if session_id is not None:
            stmt = stmt.where(PipelineRunRow.session_id == session_id)
        with self._read() as s:
            rows = s.scalars(stmt.order_by(PipelineRunRow.created_at.desc()).limit(limit)).all()
        return [PipelineResult.model_validate(r.trace) for r in rows]


def _memory_from_mapping(m: Any) -> Memory:
    return Memory(
        id=m["id"], user_id=m["user_id"], content=m["content"], type=m["type"], status=m["status"],
        created_at=aware(m["created_at"]), updated_at=aware(m["updated_at"]),
        source_message_ids=list(m["source_message_ids"] or []), source_session_id=m["source_session_id"],
        superseded_by=m["superseded_by"], outdated_at=aware(m["outdated_at"]),
    )


def _message(r: MessageRow) -> Message:
    return Message(
        id=r.message_id, user_id=r.user_id, session_id=r.session_id, role=r.role,  # type: ignore[arg-type]
        content=r.content, created_at=aware(r.created_at),  # type: ignore[arg-type]
    )


def _check_type_status(type_: str, status: str) -> None:
    if type_ not in MEMORY_TYPES:
        raise ValidationError(f"Unknown memory type '{type_}'. Use one of: {', '.join(MEMORY_TYPES)}.")
    if status not in MEMORY_STATUSES:
        raise ValidationError(f"Unknown status '{status}'. Use one of: {', '.join(MEMORY_STATUSES)}.")


def _clean_title(title: str) -> str:
    title = " ".join(str(title).split())[:200]
    return title or "New chat"


def _brief(exc: BaseException) -> str:
    """The database's own message, one line, without the SQL statement or parameters (they may hold content)."""
    orig = getattr(exc, "orig", None)
    msg = str(orig) if orig is not None else str(exc).split("\n")[0]
    return msg[:300]
