"""The database under the store: engine and backend, schema, and transactions with the per-user lock.

Concurrency: every write runs in one transaction. A memory write first takes a per-user lock — ``BEGIN IMMEDIATE``
on SQLite (one writer per file), ``SELECT … FOR UPDATE`` on the user's row on MySQL/TiDB. A caller that planned its
changes against a ``memory_version`` passes it as ``expected_version``; if another writer moved it meanwhile, the
transaction is rolled back with :class:`ConcurrentUpdateError` and the caller re-plans. Every memory write bumps the
version, which also lets caches (of this process and others) notice the change.

Whoever keeps a copy of a user's memories (the search indexes) subscribes with :meth:`Database.on_user_write` and
hears of every write that held a user's lock, committed or not.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, inspect, select, text, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from timemory.errors import ConcurrentUpdateError, DatabaseError, ErasedUserError
from timemory.store._connection import (
    SQLITE_BEGIN,
    Backend,
    detect_backend,
    enable_native_vectors,
    tidb_vector_index_ddl,
)
from timemory.store._models import Base, ErasedUserRow, MemoryRow, MetaRow, UserRow, utcnow
from timemory.store._rows import brief

ERASURE_KEY = "erasure_key"  # timemory_meta: the key erased ids are hashed with
# (id, type, status, unit vector, content) of a memory as a write left it
MemoryState = tuple[str, str, str, Any, str]


@dataclass(frozen=True)
class UserWrite:
    """What one transaction that held a user's lock did. ``from_version`` is the version it started from and
    ``rows`` the touched memories as committed (a touched id without a row was deleted); both are None/empty when
    the write did not commit or did not say what it touched — a listener then forgets what it knew of the user."""

    user_id: str
    from_version: int | None = None
    touched: Sequence[str] = ()
    rows: Sequence[MemoryState] = field(default_factory=tuple)


class Database:
    def __init__(self, engine: Engine, *, embedding_dim: int, vector_index: bool = False) -> None:
        self.engine = engine
        try:
            self.backend: Backend = detect_backend(engine)
        except SQLAlchemyError as exc:
            raise DatabaseError(f"Cannot connect to the database: {brief(exc)}") from exc
        if self.backend == "tidb":
            enable_native_vectors(engine, embedding_dim)
        self.vector_index = vector_index and self.backend == "tidb"
        self._listeners: list[Callable[[UserWrite], None]] = []
        self._row_wanters: list[Callable[[str], bool]] = []
        self._erasure_key: bytes | None = None
        self._create_schema()

    def close(self) -> None:
        self.engine.dispose()

    def on_user_write(self, listener: Callable[[UserWrite], None],
                      wants_rows: Callable[[str], bool] | None = None) -> None:
        """Call ``listener`` after every write that held a user's lock. ``wants_rows(user_id)`` says whether it would
        use the touched rows of that user (a writer reads them only then; otherwise the write is announced as one
        to forget)."""
        self._listeners.append(listener)
        if wants_rows is not None:
            self._row_wanters.append(wants_rows)

    def wants_rows(self, user_id: str) -> bool:
        return any(wants(user_id) for wants in self._row_wanters)

    def announce(self, write: UserWrite) -> None:
        for listener in self._listeners:
            listener(write)

    def _create_schema(self) -> None:
        try:
            Base.metadata.create_all(self.engine)
            self._add_new_columns()
            key = inspect(self.engine).get_pk_constraint("memories")["constrained_columns"]
            for index in MemoryRow.__table__.indexes:  # type: ignore[attr-defined]  # indexes added since creation
                if [c.name for c in index.columns] != key:  # an older table's key on id already is that index
                    index.create(self.engine, checkfirst=True)
            if self.vector_index:
                self._ensure_vector_index()
        except SQLAlchemyError as exc:
            raise DatabaseError(f"Could not create the TiMemory tables: {brief(exc)}") from exc

    def _add_new_columns(self) -> None:
        """Columns added to a table since an older version created it (``create_all`` adds only tables)."""
        with self.engine.begin() as conn:
            for table in Base.metadata.sorted_tables:
                have = {c["name"] for c in inspect(conn).get_columns(table.name)}
                for column in table.columns:
                    if column.name not in have and column.nullable:
                        kind = column.type.compile(dialect=conn.dialect)
                        conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind} NULL"))

    def _ensure_vector_index(self) -> None:
        with self.engine.begin() as conn:
            indexes = {ix["name"] for ix in inspect(conn).get_indexes("memories")}
            if any(name and "cosine" in name for name in indexes):
                return
            for ddl in tidb_vector_index_ddl():
                conn.execute(text(ddl))

    def meta(self) -> dict[str, str]:
        with self.read() as s:
            return {m.key: m.value for m in s.scalars(select(MetaRow))}

    def set_meta(self, values: dict[str, str]) -> None:
        with self.write() as s:
            for key, value in values.items():
                s.merge(MetaRow(key=key, value=value))

    # ------------------------------------------------------------------ sessions of the ORM
    @contextmanager
    def read(self) -> Iterator[Session]:
        try:
            with Session(self.engine, expire_on_commit=False) as s:
                yield s
        except SQLAlchemyError as exc:
            raise DatabaseError(f"Database read failed: {brief(exc)}") from exc

    @contextmanager
    def write(self, user_id: str | None = None, expected_version: int | None = None) -> Iterator[Session]:
        """One write transaction; with ``user_id`` it holds that user's lock and bumps the memory version, and the
        listeners hear of it afterwards (a writer that says what it touched sets ``s.info["written"]``)."""
        committed: UserWrite | None = None
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
                    written = s.info.get("written")
            committed = written  # only now: the transaction above committed
        except SQLAlchemyError as exc:
            raise DatabaseError(f"Database write failed and was rolled back: {brief(exc)}") from exc
        finally:
            if user_id is not None:
                self.announce(committed or UserWrite(user_id))

    # ------------------------------------------------------------------ erased users
    def user_hash(self, s: Session, user_id: str) -> str | None:
        """The keyed hash an erased user is remembered by (None while no user was ever erased here: no key yet)."""
        if self._erasure_key is None:
            row = s.get(MetaRow, ERASURE_KEY)
            if row is None:
                return None
            self._erasure_key = bytes.fromhex(row.value)
        return hmac.new(self._erasure_key, user_id.encode(), hashlib.sha256).hexdigest()

    def make_erasure_key(self) -> None:
        """The database's key for hashing erased ids, made once (two processes racing both end up with the first)."""
        try:
            with self.write() as s:
                if s.get(MetaRow, ERASURE_KEY) is None:
                    s.add(MetaRow(key=ERASURE_KEY, value=secrets.token_hex(32)))
        except DatabaseError:
            with self.read() as s:  # another process made it first
                if s.get(MetaRow, ERASURE_KEY) is None:
                    raise

    def refuse_erased(self, s: Session, user_id: str) -> None:
        """Raise ErasedUserError if ``user_id`` was erased (a write about to create the user again)."""
        digest = self.user_hash(s, user_id)
        if digest is not None and s.get(ErasedUserRow, digest) is not None:
            raise ErasedUserError(f"User '{user_id}' was erased; nothing is written for them unless a person "
                                  "creates the user again (tm.users.ensure, or New user in the dashboard).")

    def _lock_user(self, s: Session, user_id: str) -> int:
        stmt = select(UserRow.memory_version).where(UserRow.id == user_id)
        if self.engine.dialect.name in ("mysql", "mariadb"):  # MariaDB, MySQL and TiDB
            if s.get(UserRow, user_id) is None:
                self.refuse_erased(s, user_id)
            # Create-or-lock the user's row in one statement. A locking read of a row that does not exist yet takes
            # a gap lock, and two such first writes of different new users deadlock on their inserts (InnoDB).
            s.execute(mysql_insert(UserRow).values(id=user_id, created_at=utcnow(), memory_version=0)
                      .on_duplicate_key_update(memory_version=UserRow.__table__.c.memory_version))
        if self.backend != "sqlite":
            stmt = stmt.with_for_update()
        version = s.scalar(stmt)
        if version is None:
            self.refuse_erased(s, user_id)
            s.add(UserRow(id=user_id, created_at=utcnow(), memory_version=0))
            s.flush()
            version = 0
        return int(version)

    @staticmethod
    def version(s: Session, user_id: str) -> int:
        """The user's memory version, read in an open session."""
        return int(s.scalar(select(UserRow.memory_version).where(UserRow.id == user_id)) or 0)
