"""Many users on one database (``python -m bench --only scale``): 10,000 users whose memory counts are long-tailed
(most under 200, a few over 20k; about 2M memories), on SQLite and on MariaDB, searched and written by a Zipf
stream with the product's default cache of users.

The database is built once through the product's own write path (``store.memories.apply``, 5,000 rows per
transaction) and cached: the SQLite file under data/bench/, a MariaDB database ``timemory_scale_…`` named after
the spec. Vectors and texts are the embedded benchmark corpus (real MiniLM vectors), each user a slice of it. The
rows the stream and the writers add stay in the cached database (a few thousand per run among 1.8M).
"""

from __future__ import annotations

import os
import random
import threading
import time
import tracemalloc
from typing import Any

import numpy as np

from .common import RESULTS, Stats
from .corpus import QUERIES, embedded

SPEC = {"users": 10_000, "large": 16, "seed": 5}  # large: users given 20k-45k memories
MYSQL_SERVER = os.environ.get("TIMEMORY_BENCH_MYSQL_SERVER", "mysql+pymysql://root@127.0.0.1:3306")
K = 5
GOAL_COLD_P95_MS = 50.0


def memory_counts(spec: dict[str, int]) -> np.ndarray:
    """Long-tailed memories per user: log-normal (median about 55, a tail to 15k) for most, and ``large`` users
    with 20k-45k."""
    rng = np.random.default_rng(spec["seed"])
    counts = np.clip(rng.lognormal(mean=4.0, sigma=1.3, size=spec["users"]), 3, 15_000).astype(np.int64)
    large = rng.choice(spec["users"], size=spec["large"], replace=False)
    counts[large] = rng.integers(20_000, 45_000, size=len(large))
    return counts


def _user(i: int) -> str:
    return f"user-{i:05d}"


def _name(spec: dict[str, int]) -> str:
    return f"scale_{spec['users']}_{spec['large']}_{spec['seed']}"


def open_store(backend: str, spec: dict[str, int], embedder: Any, *, fresh: bool = False) -> Any:
    from sqlalchemy import create_engine, text

    from timemory.store import Store

    if backend == "sqlite":
        path = RESULTS / f"{_name(spec)}.db"
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
        RESULTS.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    else:
        engine = create_engine(MYSQL_SERVER)
        with engine.begin() as conn:
            if fresh:
                conn.execute(text(f"DROP DATABASE IF EXISTS timemory_{_name(spec)}"))
            conn.execute(text(f"CREATE DATABASE IF NOT EXISTS timemory_{_name(spec)}"))
        engine.dispose()
        url = f"{MYSQL_SERVER}/timemory_{_name(spec)}"
    return Store.from_url(url, embedding_model=embedder.name, embedding_dim=embedder.dim)


def build(backend: str, spec: dict[str, int], embedder: Any) -> tuple[Any, dict[str, Any]]:
    """The store with every user's memories, built unless a finished build of this spec is cached."""
    from tqdm import tqdm

    from timemory.store import AddMemory

    store = open_store(backend, spec, embedder)
    counts = memory_counts(spec)
    marker = f"scale benchmark {_name(spec)}"
    if any(s[4] == marker for s in store.memories.states("scale-spec", vectors=False)):
        return store, {"built_s": None, "cached": True, "counts": counts}
    store.db.engine.dispose()
    store = open_store(backend, spec, embedder, fresh=True)
    texts, vectors = embedded(100_000, embedder)
    started = time.perf_counter()
    with tqdm(total=int(counts.sum()), unit="memories", desc=f"building {backend}", mininterval=5) as bar:
        for i, count in enumerate(counts):
            offset = (i * 7_919) % len(texts)
            rows = [(offset + j) % len(texts) for j in range(int(count))]
            for start in range(0, len(rows), 5_000):
                part = rows[start:start + 5_000]
                store.memories.apply(_user(i), [AddMemory(content=texts[r][0], type=texts[r][1],
                                                          embedding=vectors[r], actor="user") for r in part])
                bar.update(len(part))
    store.memories.apply("scale-spec", [AddMemory(content=marker, type="activity", embedding=vectors[0],
                                                  actor="user")])
    return store, {"built_s": time.perf_counter() - started, "cached": False, "counts": counts}


def size_on_disk_mb(store: Any, backend: str, spec: dict[str, int]) -> float:
    from sqlalchemy import text

    if backend == "sqlite":
        path = RESULTS / f"{_name(spec)}.db"
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20
    with store.db.engine.connect() as conn:
        found = conn.execute(text("SELECT SUM(data_length + index_length) FROM information_schema.tables "
                                  "WHERE table_schema = :db"), {"db": f"timemory_{_name(spec)}"}).scalar()
    return float(found or 0) / 2**20


def cold_and_hot(search: Any, users: list[str], queries: list[str], qvecs: np.ndarray) -> dict[str, Any]:
    """Each user searched cold (dropped from the cache first), then hot."""
    cold, hot = [], []
    for i, user in enumerate(users):
        search.index.invalidate(user)
        q = i % len(queries)
        started = time.perf_counter()
        search.find(user, queries[q], qvecs[q][None, :], K)
        cold.append(time.perf_counter() - started)
        started = time.perf_counter()
        search.find(user, queries[q], qvecs[q][None, :], K)
        hot.append(time.perf_counter() - started)
    return {"cold": Stats.of(cold).__dict__, "hot": Stats.of(hot).__dict__}


def load_cost(search: Any, users: list[tuple[str, int]]) -> dict[str, float]:
    """Milliseconds to load a user into the cache (vectors and keyword index), fitted as fixed + per 1k memories."""
    sizes, seconds = [], []
    for user, n in users:
        search.index.invalidate(user)
        started = time.perf_counter()
        search.entry(user)
        seconds.append(time.perf_counter() - started)
        sizes.append(n)
    slope, fixed = np.polyfit(np.array(sizes) / 1000, np.array(seconds) * 1000, 1)
    return {"per_1k_ms": float(slope), "fixed_ms": float(fixed)}


def held_bytes(search: Any, user: str) -> int:
    """Bytes a cached user holds (vectors and keyword index), as allocated."""
    search.index.invalidate(user)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    entry = search.entry(user)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del entry
    return int(held)


def zipf_stream(search: Any, store: Any, counts: np.ndarray, qvecs: np.ndarray, vectors: np.ndarray,
                operations: int, seed: int = 11, exponent: float = 1.1, write_share: float = 0.1) -> dict[str, Any]:
    """Searches and writes over users drawn by a Zipf law (popularity independent of size)."""
    from timemory.store import AddMemory

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(counts))
    weights = 1.0 / np.arange(1, len(counts) + 1) ** exponent
    picks = order[rng.choice(len(counts), size=operations, p=weights / weights.sum())]
    hot, cold, writes = [], [], []
    for step, i in enumerate(picks):
        user = _user(int(i))
        started = time.perf_counter()
        if rng.random() < write_share:
            store.memories.apply(user, [AddMemory(content=f"A new detail number {step}.", type="activity",
                                                  embedding=vectors[step % len(vectors)], actor="user")])
            writes.append(time.perf_counter() - started)
            continue
        cached = search.index.peek(user) is not None
        q = step % len(QUERIES)
        search.find(user, QUERIES[q], qvecs[q][None, :], K)
        (hot if cached else cold).append(time.perf_counter() - started)
    searches = len(hot) + len(cold)
    return {"operations": operations, "hit_rate": len(hot) / max(1, searches), "hot": Stats.of(hot).__dict__,
            "cold": Stats.of(cold).__dict__ if cold else None, "write": Stats.of(writes).__dict__}


def contention(store: Any, vectors: np.ndarray, threads: int = 4, seconds: float = 5.0) -> dict[str, float]:
    """Writes/s of ``threads`` writers, all on one user (its lock serialises them) and each on its own user."""
    from timemory.store import AddMemory

    def rate(users: list[str]) -> float:
        done = [0] * threads
        stop = time.perf_counter() + seconds

        def writer(t: int) -> None:
            while time.perf_counter() < stop:
                store.memories.apply(users[t], [AddMemory(content=f"contended write {t}-{done[t]}", type="activity",
                                                          embedding=vectors[done[t] % len(vectors)], actor="user")])
                done[t] += 1

        workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return sum(done) / seconds

    return {"threads": threads, "one_user_per_s": rate(["contended-user"] * threads),
            "own_user_per_s": rate([f"writer-{t}" for t in range(threads)])}


def tidb_path(backend: str, spec: dict[str, int], embedder: Any, users: list[str]) -> dict[str, Any] | None:
    """TiDB's search path (vectors ranked by ``VEC_COSINE_DISTANCE`` in SQL over the user's rows, words by the
    cached keyword index) on the SQLite build, the distance defined as a Python function: the statements TiDB gets,
    on an engine far slower per row than TiDB's native vector functions, so an upper bound of its cost shape."""
    if backend != "sqlite":
        return None
    import json

    from sqlalchemy import event

    from timemory.search import NumpyIndex, TiDBSearch

    store = open_store(backend, spec, embedder)

    def cosine_distance(blob: bytes, literal: str) -> float:
        a, b = np.frombuffer(blob, dtype=np.float32), np.array(json.loads(literal), dtype=np.float32)
        return float(1.0 - a @ b)  # unit vectors

    @event.listens_for(store.engine, "connect")
    def define(conn: Any, _record: Any) -> None:
        conn.create_function("VEC_COSINE_DISTANCE", 2, cosine_distance, deterministic=True)

    store.engine.dispose()
    store.db.backend = "tidb"  # the TiDB statements, sent to this SQLite file
    search = TiDBSearch(store, NumpyIndex(store.dim, approximate_from=None))
    out = cold_and_hot(search, users, QUERIES, embedder.embed(QUERIES))
    store.engine.dispose()
    return out


def measure_backend(backend: str, spec: dict[str, int], embedder: Any, operations: int,
                    sample: int) -> dict[str, Any]:
    from timemory.search import EmbeddedSearch

    store, built = build(backend, spec, embedder)
    counts = built.pop("counts")
    search = EmbeddedSearch(store)  # the product's default: exact below 50k memories, the default cache of users
    qvecs = embedder.embed(QUERIES)
    _, vectors = embedded(1_000, embedder)
    rng = random.Random(spec["seed"])
    near_1k = [i for i, c in enumerate(counts) if 800 <= c <= 1_250]
    small = [i for i, c in enumerate(counts) if c < 200]
    by_size = sorted(range(len(counts)), key=lambda i: counts[i])
    spread = [by_size[int(f * (len(by_size) - 1))] for f in np.linspace(0.5, 0.9995, min(sample, len(by_size)))]
    out: dict[str, Any] = {
        **built, "users": int(len(counts)), "memories": int(counts.sum()),
        "median_per_user": float(np.median(counts)), "largest": int(counts.max()),
        "under_200_share": float((counts < 200).mean()), "over_20k": int((counts > 20_000).sum()),
        "disk_mb": size_on_disk_mb(store, backend, spec),
        "near_1k": {"users": min(sample, len(near_1k)), "mean_memories": float(np.mean(
            [counts[i] for i in rng.sample(near_1k, min(sample, len(near_1k)))])) if near_1k else 0.0,
            **cold_and_hot(search, [_user(i) for i in rng.sample(near_1k, min(sample, len(near_1k)))],
                           QUERIES, qvecs)},
        "small": cold_and_hot(search, [_user(i) for i in rng.sample(small, min(sample, len(small)))],
                              QUERIES, qvecs),
        "load": load_cost(search, [(_user(i), int(counts[i])) for i in spread]),
    }
    out["tidb_statements"] = tidb_path(backend, spec, embedder, [_user(i) for i in near_1k[:sample]])
    one_k = near_1k[0] if near_1k else int(np.argmin(np.abs(counts - 1_000)))
    out["held_bytes_1k_user"] = held_bytes(search, _user(one_k))
    out["held_bytes_per_memory"] = out["held_bytes_1k_user"] / int(counts[one_k])
    search.index.invalidate()
    out["stream"] = zipf_stream(search, store, counts, qvecs, vectors, operations)
    out["contention"] = contention(store, vectors, seconds=3.0 if operations < 1_000 else 10.0)
    store.db.engine.dispose()
    return out


def measure(spec: dict[str, int] | None = None, operations: int = 20_000, sample: int = 60,
            backends: tuple[str, ...] = ("sqlite", "mariadb")) -> dict[str, Any]:
    from timemory.providers import LocalEmbedder

    spec = spec or SPEC
    embedder = LocalEmbedder()
    out: dict[str, Any] = {"spec": spec, "operations": operations, "backends": {}}
    for backend in backends:
        print(f"  scale: {backend}, {spec['users']:,} users", flush=True)
        out["backends"][backend] = measure_backend(backend, spec, embedder, operations, sample)
    return out


def _ms(stats: dict[str, float] | None) -> str:
    return "–" if not stats else f"{stats['p50']:.1f} / {stats['p95']:.1f}"


def section(data: dict[str, Any]) -> list[str]:
    spec, info = data["spec"], data.get("machine", {})
    when = f"Measured on {info['date']}: {info['machine']}. " if info else ""
    out = ["## 11. Many users on one database", "",
           f"{when}{spec['users']:,} users, memory counts long-tailed, built through the product's write path and "
           "cached; every user a slice of the embedded benchmark corpus. The search is the product's default "
           "(exact hybrid, the default cache of users). Times in ms, p50 / p95; cold = the user is not in the cache "
           "(vectors and keyword index loaded from the database first).", "",
           "| backend | users | memories | median per user | under 200 | over 20k | on disk | build |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    rows = data["backends"]
    for name, r in rows.items():
        build = "cached" if r["cached"] else f"{r['built_s'] / 60:.1f} min"
        out.append(f"| {name} | {r['users']:,} | {r['memories']:,} | {r['median_per_user']:.0f} | "
                   f"{r['under_200_share']:.0%} | {r['over_20k']} | {r['disk_mb']:,.0f} MB | {build} |")
    out += ["", "| backend | ~1k memories, cold | ~1k, hot | under 200, cold | under 200, hot | load per 1k memories "
            "| held per memory |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        out.append(f"| {name} | {_ms(r['near_1k']['cold'])} | {_ms(r['near_1k']['hot'])} | {_ms(r['small']['cold'])} "
                   f"| {_ms(r['small']['hot'])} | {r['load']['per_1k_ms']:.1f} ms (+{r['load']['fixed_ms']:.1f}) | "
                   f"{r['held_bytes_per_memory']:,.0f} B |")
    out += ["", f"Goal: a cold search of a user with about 1k memories at p95 ≤ {GOAL_COLD_P95_MS:.0f} ms.", "",
            f"**Zipf stream** ({data['operations']:,} operations, 90% searches, 10% writes, users drawn by a Zipf "
            "law of exponent 1.1, popularity independent of size):", "",
            "| backend | cache hit rate | search, hit | search, miss | write | writers on one user | writers on "
            "their own users |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        s, c = r["stream"], r["contention"]
        out.append(f"| {name} | {s['hit_rate']:.0%} | {_ms(s['hot'])} | {_ms(s['cold'])} | {_ms(s['write'])} | "
                   f"{c['one_user_per_s']:.0f}/s | {c['own_user_per_s']:.0f}/s |")
    tidb = (rows.get("sqlite") or {}).get("tidb_statements")
    if tidb:
        out += ["", f"**TiDB's statements, same users** (~1k memories): {_ms(tidb['cold'])} cold, {_ms(tidb['hot'])} "
                "hot. TiDBSearch sent its SQL (`VEC_COSINE_DISTANCE` over the user's rows, ordered, limited) to the "
                "SQLite build, with the distance defined as a Python function; TiDB evaluates it natively, so this is "
                "the cost shape, not TiDB's figure (docs/scaling.md)."]
    threads = next(iter(rows.values()))["contention"]["threads"] if rows else 0
    return out + ["", f"Writers: {threads} threads adding one memory per transaction for a fixed time. "
                  "Reproduce with `python -m bench --only scale` (the first run builds both databases).", ""]

