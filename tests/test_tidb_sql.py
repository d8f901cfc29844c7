"""TiDB: the exact DDL and search SQL, compiled with the MySQL dialect; plus an opt-in live test."""

from __future__ import annotations

import itertools
import json
import os
import ssl

import numpy as np
import pytest
from sqlalchemy import event
from sqlalchemy.dialects import mysql
from sqlalchemy.schema import CreateTable

from timemory import Settings, TiMem
from timemory.search._tidb import tidb_cosine_statement, tidb_search_statement
from timemory.store import Store
from timemory.store._connection import tidb_vector_index_ddl
from timemory.store._models import TIDB_VECTOR_DIM_ATTR, MemoryRow


def tidb_dialect(dim: int = 384) -> mysql.dialect:
    d = mysql.dialect()
    setattr(d, TIDB_VECTOR_DIM_ATTR, dim)
    return d


def sql(stmt) -> str:
    return " ".join(str(stmt.compile(dialect=tidb_dialect(), compile_kwargs={"literal_binds": True})).split())


def test_memories_ddl_uses_native_vector_column() -> None:
    ddl = " ".join(str(CreateTable(MemoryRow.__table__).compile(dialect=tidb_dialect(384))).split())
    assert "embedding VECTOR(384) NOT NULL" in ddl
    assert "content MEDIUMTEXT NOT NULL" in ddl
    plain = " ".join(str(CreateTable(MemoryRow.__table__).compile(dialect=mysql.dialect())).split())
    assert "embedding BLOB NOT NULL" in plain  # MySQL/MariaDB without vector functions


def test_exact_search_filters_in_sql() -> None:
    q = np.array([0.5, 0.25, 0.0], dtype=np.float32)
    text = sql(tidb_search_statement("u1", q, 5, types=None, statuses=["active"], use_index=False))
    assert text == (
        "SELECT memories.id, VEC_COSINE_DISTANCE(memories.embedding, '[0.5,0.25,0.0]') AS distance "
        "FROM memories WHERE memories.user_id = 'u1' AND memories.status IN ('active') "
        "ORDER BY distance LIMIT 5"
    )


def test_indexed_search_overfetches_then_filters_outside() -> None:
    q = np.array([1.0, 0.0], dtype=np.float32)
    text = sql(tidb_search_statement("u1", q, 3, types=["plan"], statuses=["active"], use_index=True))
    assert text == (
        "SELECT nearest.id, nearest.distance FROM (SELECT memories.id AS id, memories.user_id AS user_id, "
        "memories.type AS type, memories.status AS status, "
        "VEC_COSINE_DISTANCE(memories.embedding, '[1.0,0.0]') AS distance FROM memories "
        "ORDER BY distance LIMIT 30) AS nearest WHERE nearest.user_id = 'u1' AND nearest.type IN ('plan') "
        "AND nearest.status IN ('active') ORDER BY nearest.distance LIMIT 3"
    )


def test_cosine_of_chosen_rows_for_the_hybrid_fusion() -> None:
    text = sql(tidb_cosine_statement("u1", np.array([1.0, 0.5], dtype=np.float32), ["a", "b"]))
    assert text == (
        "SELECT memories.id, VEC_COSINE_DISTANCE(memories.embedding, '[1.0,0.5]') AS distance FROM memories "
        "WHERE memories.user_id = 'u1' AND memories.id IN ('a', 'b')"
    )


def test_tidb_search_path_ranks_like_the_embedded_one(embedder, tmp_path) -> None:
    """The TiDB code path (vectors ranked in SQL, words by the cached keyword index, fused here) run on SQLite with
    TiDB's VEC_COSINE_DISTANCE defined as a SQLite function: every mode must rank as the numpy path does."""
    url = f"sqlite:///{tmp_path}/tidb-path.db"
    tidb_like = Store.from_url(url, embedding_model=embedder.name, embedding_dim=embedder.dim)

    def cosine_distance(blob: bytes, literal: str) -> float:
        a, b = np.frombuffer(blob, dtype=np.float32), np.array(json.loads(literal), dtype=np.float32)
        return float(1.0 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    @event.listens_for(tidb_like.engine, "connect")
    def define(conn, _record) -> None:
        conn.create_function("VEC_COSINE_DISTANCE", 2, cosine_distance, deterministic=True)

    tidb_like.engine.dispose()  # pooled connections were opened before the function existed
    tidb_like.db.backend = "tidb"
    tm = TiMem(tidb_like, embedder)
    for text in ["The user lives in Porto with Kofi.", "The user is allergic to peanuts.", "Kofi plays chess.",
                 "The user works in a hospital.", "The user moved to Osaka in 2024."]:
        tm.add(text, user_id="u", type="personal")
    tm.add("The user lived in Leeds.", user_id="u", type="personal", status="outdated")
    tm.add("Kofi lives in Accra.", user_id="other", type="personal")
    embedded = TiMem(Store.from_url(url, embedding_model=embedder.name, embedding_dim=embedder.dim), embedder)
    for query, mode, statuses in itertools.product(["Who is Kofi?", "peanut allergy", "where did the user live"],
                                                   ["hybrid", "vector", "keyword"], [("active",), None]):
        mine, theirs = ([(h.memory.id, round(h.score, 4)) for h in engine.search(
            query, user_id="u", limit=4, mode=mode, statuses=statuses)] for engine in (tm, embedded))
        assert mine == theirs, (query, mode, statuses)
    cached = tm.engine.search_index.index.peek("u")
    assert cached is not None and cached.buffer.shape == (5 + 1, 0)  # the TiDB path ran: words cached, vectors in SQL
    moved = tm.add("Kofi moved to Lisbon.", user_id="u", type="personal")  # a write after the words were cached
    assert [h.memory.id for h in tm.search("Lisbon", user_id="u", limit=1, mode="keyword")] == [moved.id]
    assert tm.search("Where does Kofi live now?", user_id="u", limit=6)[0].memory.user_id == "u"
    embedded.close()
    tm.close()


def test_hnsw_index_ddl() -> None:
    assert tidb_vector_index_ddl() == [
        "ALTER TABLE `memories` SET TIFLASH REPLICA 1",
        "ALTER TABLE `memories` ADD VECTOR INDEX `idx_memories_embedding_cosine` "
        "((VEC_COSINE_DISTANCE(`embedding`)))",
    ]


def test_tidb_settings_build_a_verified_tls_url(monkeypatch) -> None:
    for key in ("TIMEMORY_DATABASE_URL", "TIDB_SSL_CA", "TIDB_SSL_VERIFY"):
        monkeypatch.delenv(key, raising=False)
    s = Settings(_env_file=None, tidb_host="gateway01.example.com", tidb_user="abc.root", tidb_password="p@ss word")
    assert s.sqlalchemy_url() == (
        "mysql+pymysql://abc.root:p%40ss+word@gateway01.example.com:4000/test?charset=utf8mb4"
    )
    ctx = s.connect_args()["ssl"]
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert "p@ss" not in s.describe_database()


def test_turning_tls_verification_off_is_explicit_and_warns(caplog) -> None:
    s = Settings(_env_file=None, tidb_host="h", tidb_ssl_verify=False)
    ctx = s.connect_args()["ssl"]
    assert ctx.verify_mode == ssl.CERT_NONE
    assert "NOT verified" in caplog.text


@pytest.mark.skipif(not os.environ.get("TIMEMORY_TEST_TIDB_URL"), reason="set TIMEMORY_TEST_TIDB_URL for live TiDB")
def test_live_tidb_round_trip(embedder) -> None:
    url = os.environ["TIMEMORY_TEST_TIDB_URL"]
    store = Store.from_url(url, embedding_model=embedder.name, embedding_dim=embedder.dim,
                           connect_args={"ssl": ssl.create_default_context()} if "tidbcloud" in url else None)
    assert store.backend == "tidb"
    tm = TiMem(store, embedder)
    user = f"live-{os.getpid()}"
    try:
        m = tm.add("The user drinks green tea.", user_id=user, type="preference")
        assert tm.search("tea", user_id=user)[0].memory.id == m.id
    finally:
        store.erasure.user(user)
