"""SQLAlchemy 2.0 typed ORM models. One schema for SQLite, MySQL-protocol servers and TiDB.

The embedding column is a BLOB of float32 everywhere except TiDB, where it is a native ``VECTOR(D)``
(``tidb-vector``). Which one a dialect gets is decided once, when the store connects (see ``engine.py``).
Times are stored as naive UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, LargeBinary, PrimaryKeyConstraint, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

# Attribute set on a dialect instance when the server is TiDB: the vector dimension for VECTOR(D).
TIDB_VECTOR_DIM_ATTR = "timemory_tidb_vector_dim"

LongText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Json = JSON().with_variant(mysql.JSON(), "mysql", "mariadb")
Id = String(36)
UserId = String(128)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def tidb_vector_dim(dialect: Dialect) -> int | None:
    return getattr(dialect, TIDB_VECTOR_DIM_ATTR, None)


class EmbeddingColumn(TypeDecorator[np.ndarray]):
    """float32 vector: native VECTOR(D) on TiDB, raw float32 bytes elsewhere."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        dim = tidb_vector_dim(dialect)
        if dim:
            from tidb_vector.sqlalchemy import VectorType  # the tidb extra, checked when the store connects

            return dialect.type_descriptor(VectorType(dim))
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        arr = np.asarray(value, dtype=np.float32).ravel()
        if tidb_vector_dim(dialect):
            return arr  # VectorType's own bind processor renders "[...]"
        return arr.tobytes()

    def process_result_value(self, value: Any, dialect: Dialect) -> np.ndarray | None:
        if value is None:
            return None
        if isinstance(value, np.ndarray):
            return value.astype(np.float32, copy=False)
        return np.frombuffer(value, dtype=np.float32)


class Base(DeclarativeBase):
    pass


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(UserId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    # Bumped by every write to this user's memories: cache invalidation and optimistic concurrency.
    memory_version: Mapped[int] = mapped_column(Integer, default=0)


class ErasedUserRow(Base):
    """A user that was erased, by a keyed hash of the id (never the id itself): writes that would bring the user
    back without a person asking for it are refused."""

    __tablename__ = "erased_users"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class SessionRow(Base):
    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_user_updated", "user_id", "updated_at"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    user_id: Mapped[str] = mapped_column(UserId)
    title: Mapped[str] = mapped_column(String(200), default="New chat")
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class MessageRow(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ux_messages_user_msg", "user_id", "message_id", unique=True),
        Index("ix_messages_session", "session_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(UserId)
    message_id: Mapped[str] = mapped_column(String(128))
    session_id: Mapped[str | None] = mapped_column(Id, nullable=True)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(LongText)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    name: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the speaker's name (added in 0.9)
    # The message's own vector, written the first time an episode search meets it (added in 0.7).
    embedding: Mapped[np.ndarray | None] = mapped_column(EmbeddingColumn, nullable=True, deferred=True)


class SummaryRow(Base):
    """One version of a chat session's rolling summary; the newest is the session's summary, the rest its history."""

    __tablename__ = "session_summaries"
    __table_args__ = (Index("ix_summaries_session", "session_id", "seq"), Index("ix_summaries_user", "user_id", "seq"))

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(UserId)
    session_id: Mapped[str] = mapped_column(Id)
    content: Mapped[str] = mapped_column(LongText)
    through_seq: Mapped[int] = mapped_column(Integer)  # the last message it covers
    messages: Mapped[int] = mapped_column(Integer)  # how many messages of the session it covers
    reason: Mapped[str] = mapped_column(String(16))  # turns | idle | topic | replay | asked
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    embedding: Mapped[np.ndarray | None] = mapped_column(EmbeddingColumn, nullable=True, deferred=True)


class MemoryRow(Base):
    __tablename__ = "memories"
    __table_args__ = (
        # Keyed by user first: InnoDB and TiKV store rows in key order, so loading a user reads their rows together
        # instead of one page per memory (docs/scaling.md). Tables made by earlier versions keep their key on id.
        PrimaryKeyConstraint("user_id", "id"),
        Index("ux_memories_id", "id", unique=True),  # ids stay unique across users (imports keep theirs)
        Index("ix_memories_user_status", "user_id", "status"),
        Index("ix_memories_user_updated", "user_id", "updated_at"),
        Index("ix_memories_user_subject", "user_id", "subject"),
    )

    id: Mapped[str] = mapped_column(Id)
    user_id: Mapped[str] = mapped_column(UserId)
    content: Mapped[str] = mapped_column(LongText)
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="active")
    embedding: Mapped[np.ndarray] = mapped_column(EmbeddingColumn())
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    source_message_ids: Mapped[list[str]] = mapped_column(Json, default=list)
    source_session_id: Mapped[str | None] = mapped_column(Id, nullable=True)
    superseded_by: Mapped[str | None] = mapped_column(Id, nullable=True)
    outdated_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    subject: Mapped[str | None] = mapped_column(String(32), nullable=True)  # added in 0.5: see Database.upgrade
    provenance: Mapped[str | None] = mapped_column(String(16), nullable=True)  # added in 0.6 (turns | session)


class MemoryEventRow(Base):
    """One row per change. Not a foreign key to memories: history outlives a deleted memory."""

    __tablename__ = "memory_events"
    __table_args__ = (Index("ix_events_user_memory", "user_id", "memory_id"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    memory_id: Mapped[str] = mapped_column(Id)
    user_id: Mapped[str] = mapped_column(UserId)
    event: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(16))
    old_content: Mapped[str | None] = mapped_column(LongText, nullable=True)
    new_content: Mapped[str | None] = mapped_column(LongText, nullable=True)
    old_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    new_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    old_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    new_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_message_ids: Mapped[list[str]] = mapped_column(Json, default=list)
    related_memory_id: Mapped[str | None] = mapped_column(Id, nullable=True)
    run_id: Mapped[str | None] = mapped_column(Id, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class PipelineRunRow(Base):
    __tablename__ = "pipeline_runs"
    __table_args__ = (Index("ix_runs_user_created", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    user_id: Mapped[str] = mapped_column(UserId)
    session_id: Mapped[str | None] = mapped_column(Id, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    trace: Mapped[dict[str, Any]] = mapped_column(Json)
    kind: Mapped[str | None] = mapped_column(String(16), nullable=True)  # added in 0.5; NULL on older exchange runs


class ExperimentRow(Base):
    """One replay/evaluation of a dataset: its configuration, counts and metrics (the lab compares these)."""

    __tablename__ = "experiments"
    __table_args__ = (Index("ux_experiments_name", "name", unique=True),)

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    dataset_path: Mapped[str] = mapped_column(Text)
    dataset_sha256: Mapped[str] = mapped_column(String(64))
    dataset_format: Mapped[str] = mapped_column(String(16))
    user_prefix: Mapped[str] = mapped_column(UserId)
    status: Mapped[str] = mapped_column(String(16), default="running")
    config: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    wall_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class LLMCacheRow(Base):
    """A structured answer kept by the exact request that produced it (the lab's optional ``--cache``)."""

    __tablename__ = "llm_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    response: Mapped[str] = mapped_column(LongText)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class MetaRow(Base):
    """Database-wide facts, e.g. which embedding model produced the stored vectors."""

    __tablename__ = "timemory_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class JobRow(Base):
    """One unit of memory work (an exchange to learn from) in the durable queue: pending → running → done/failed.

    ``seq`` orders a user's jobs; a worker holds a running job by its ``worker`` token until ``lease_until``.
    ``applied_run_id`` is written in the same transaction as the memories the job changed, so a retry after a crash
    can tell whether the work already landed.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ux_jobs_id", "id", unique=True), Index("ix_jobs_status_seq", "status", "seq"),
                      Index("ix_jobs_user_seq", "user_id", "seq"))

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(Id)
    user_id: Mapped[str] = mapped_column(UserId)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_id: Mapped[str | None] = mapped_column(Id, nullable=True)
    applied_run_id: Mapped[str | None] = mapped_column(Id, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class ApiKeyRow(Base):
    """An API key: only a hash of its secret is kept. A user key acts for one user; an admin key for any."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(UserId, nullable=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
