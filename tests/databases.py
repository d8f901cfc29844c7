"""The test databases: a SQLite file per test, and the MariaDB server (emptied before each use)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, text

from timemory.providers import LocalEmbedder
from timemory.store import Store
from timemory.store._models import Base

MYSQL_URL = os.environ.get("TIMEMORY_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
BACKENDS = ["sqlite", "mariadb"]


def reset_mysql(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
        Base.metadata.drop_all(conn)
    engine.dispose()


def make_store(kind: str, embedder: LocalEmbedder, tmp_path: Path) -> Store:
    if kind == "sqlite":
        return Store.from_url(f"sqlite:///{tmp_path}/t.db", embedding_model=embedder.name, embedding_dim=embedder.dim)
    reset_mysql(MYSQL_URL)
    return Store.from_url(MYSQL_URL, embedding_model=embedder.name, embedding_dim=embedder.dim)
