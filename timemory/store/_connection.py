"""Engines per backend: SQLite (WAL, write transactions BEGIN IMMEDIATE), MySQL protocol, and TiDB detection."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from timemory._extras import require
from timemory.errors import MissingExtraError
from timemory.store._models import TIDB_VECTOR_DIM_ATTR

Backend = Literal["sqlite", "mysql", "tidb"]

# Execution option read by the SQLite "begin" hook: "IMMEDIATE" for writers (takes the write lock up front).
SQLITE_BEGIN = "timemory_sqlite_begin"


def make_engine(url: str, connect_args: dict[str, Any] | None = None) -> Engine:
    parsed = make_url(url)
    args = dict(connect_args or {})
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        in_memory = not database or database == ":memory:"
        if database and not in_memory:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        args.setdefault("check_same_thread", False)
        args.setdefault("timeout", 30)
        # A file: WAL lets readers run beside the one writer, and a connection is cheap; a pool as large as the
        # server's thread pool keeps threads that only read from queueing behind those waiting to write.
        pooling: dict[str, Any] = {"poolclass": StaticPool} if in_memory else {"pool_size": 20, "max_overflow": 30}
        engine = create_engine(url, connect_args=args, **pooling)
        _configure_sqlite(engine, wal=not in_memory)
        return engine
    try:
        return create_engine(url, connect_args=args, pool_pre_ping=True, pool_recycle=1800)
    except ModuleNotFoundError as exc:  # the URL's driver (PyMySQL for mysql+pymysql://) is not installed
        raise MissingExtraError(f"A {parsed.get_backend_name()}+{parsed.get_driver_name()} database", "mysql",
                                exc.name or parsed.get_driver_name(),
                                hint='For TiDB: pip install "timemory[tidb]"') from exc


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    """pysqlite's implicit transactions are replaced by explicit BEGIN (SQLAlchemy's documented recipe)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if wal:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN, "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def detect_backend(engine: Engine) -> Backend:
    name = engine.dialect.name
    if name == "sqlite":
        return "sqlite"
    if name in ("mysql", "mariadb"):
        with engine.connect() as conn:
            version = str(conn.exec_driver_sql("SELECT VERSION()").scalar() or "")
        return "tidb" if "tidb" in version.lower() else "mysql"
    raise ValueError(f"Unsupported database '{name}': use SQLite, TiDB or a MySQL-protocol server.")


def enable_native_vectors(engine: Engine, dim: int) -> None:
    """Make the embedding column a TiDB VECTOR(dim) for this engine's dialect."""
    require("tidb_vector", "tidb", "TiDB's vector column")
    setattr(engine.dialect, TIDB_VECTOR_DIM_ATTR, dim)


def tidb_vector_index_ddl(table: str = "memories", column: str = "embedding") -> list[str]:
    """DDL for TiDB's HNSW index (cosine); it needs a TiFlash replica of the table."""
    return [
        f"ALTER TABLE `{table}` SET TIFLASH REPLICA 1",
        f"ALTER TABLE `{table}` ADD VECTOR INDEX `idx_{table}_{column}_cosine` ((VEC_COSINE_DISTANCE(`{column}`)))",
    ]
