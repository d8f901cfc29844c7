"""The database under the store: engine and backend, schema, transactions with the per-user lock, users.

Concurrency: every write runs in one transaction. A memory write first takes a per-user lock — ``BEGIN IMMEDIATE``
on SQLite (one writer per file), ``SELECT … FOR UPDATE`` on the user's row on MySQL/TiDB. A caller that planned its
changes against a ``memory_version`` passes it as ``expected_version``; if another writer moved it meanwhile, the
transaction is rolled back with :class:`ConcurrentUpdateError` and the caller re-plans. Every memory write bumps the
version, which also lets vector caches (of this process and others) notice the change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, delete, func, inspect, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..errors import ConcurrentUpdateError, DatabaseError
from ..schemas import UserSummary
from ..validation import check_user_id
from .engine import SQLITE_BEGIN, Backend, detect_backend, enable_native_vectors
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
from .rows import aware, brief
from .vector import tidb_vector_index_ddl


class Database:
    def __init__(self, engine: Engine, *, embedding_dim: int, vector_index: bool = False) -> None:
        self.engine = engine
        try:
            self.backend: Backend = detect_backend(engine)
        except SQLAlchemyError as exc:
            raise DatabaseError(f"Cannot connect to the database: {brief(exc)}") from exc
        if self.backend == "tidb":
            enable_native_vectors(engine, embedding_dim)
        self._vector_index = vector_index and self.backend == "tidb"
        self._create_schema()

    def close(self) -> None:
        self.engine.dispose()

    def _after_user_write(self, user_id: str) -> None:
        """Called after every transaction that held a user's lock, committed or not."""

    def _create_schema(self) -> None:
        try:
            Base.metadata.create_all(self.engine)
            for index in MemoryRow.__table__.indexes:  # type: ignore[attr-defined]  # indexes added since creation
                index.create(self.engine, checkfirst=True)
            if self._vector_index:
                self._ensure_vector_index()
        except SQLAlchemyError as exc:
            raise DatabaseError(f"Could not create the TiMemory tables: {brief(exc)}") from exc

    def _ensure_vector_index(self) -> None:
        with self.engine.begin() as conn:
            indexes = {ix["name"] for ix in inspect(conn).get_indexes("memories")}
            if any(name and "cosine" in name for name in indexes):
                return
            for ddl in tidb_vector_index_ddl():
                conn.execute(text(ddl))

    def _set_meta(self, values: dict[str, str]) -> None:
        with self._write() as s:
            for key, value in values.items():
                s.merge(MetaRow(key=key, value=value))

    # ------------------------------------------------------------------ sessions of the ORM
    @contextmanager
    def _read(self) -> Iterator[Session]:
        try:
            with Session(self.engine, expire_on_commit=False) as s:
                yield s
        except SQLAlchemyError as exc:
            raise DatabaseError(f"Database read failed: {brief(exc)}") from exc

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
                        s.info["locked_version"] = version
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
        except SQLAlchemyError as exc:
            raise DatabaseError(f"Database write failed and was rolled back: {brief(exc)}") from exc
        finally:
            if user_id is not None:
                self._after_user_write(user_id)

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
            return self._version(s, user_id)

    @staticmethod
    def _version(s: Session, user_id: str) -> int:
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

