"""Search latency, write cost and memory at 1k/10k/100k memories for one user: TiMemory, mem0, FAISS flat.

Each (system, size) runs in its own process (``python -m bench.search SYSTEM N``) so that its RSS is its own.
All three get the same sentences, embedded once by the same local MiniLM embedder.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from hashlib import md5
from pathlib import Path
from typing import Any

import numpy as np

from .common import Stats, pin_threads, rss_mb, stopwatch, timed
from .corpus import QUERIES, embedded, load_into

USER = "bench-user"
K = 5


def _repeats(n: int, system: str) -> tuple[int, int]:
    """(searches, writes) per measurement: fewer where one call takes seconds (mem0 at 100k)."""
    if system == "mem0":
        return {1_000: (100, 30), 10_000: (40, 15)}.get(n, (12, 6))
    return (300, 30)


def run_timemory(n: int, texts, vectors, embedder, exact: bool = False) -> dict:  # type: ignore[no-untyped-def]
    """The product's default search, or (``exact``) the exact scan alone, without the HNSW graph of large users."""
    from timemory import TiMem
    from timemory.search import EmbeddedSearch, NumpyIndex
    from timemory.store import Store

    folder = tempfile.mkdtemp(prefix="bench-timemory-")
    store = Store.from_url(f"sqlite:///{folder}/bench.db", embedding_model=embedder.name, embedding_dim=embedder.dim)
    search = EmbeddedSearch(store, NumpyIndex(store.dim, approximate_from=None) if exact else None)
    tm = TiMem(store, embedder, search=search)
    base = rss_mb()
    with stopwatch() as load:
        load_into(store, USER, texts, vectors)
    qvecs = embedder.embed(QUERIES)
    with stopwatch() as first:
        search.nearest(USER, qvecs[0], K)  # loads the user's matrix from the database
    graph = _wait_for_graph(search)
    searches, writes = _repeats(n, "timemory")
    cycle = itertools.cycle(range(len(QUERIES)))
    retrieval = timed(lambda: search.nearest(USER, qvecs[next(cycle)], K), searches)
    end_to_end = timed(lambda: tm.search(QUERIES[next(cycle)], user_id=USER, limit=K, mode="vector"), searches)
    modes = {}
    for mode in ("vector", "keyword", "hybrid"):
        def ranked(i: int, mode: str = mode) -> object:
            return search.find(USER, QUERIES[i], None if mode == "keyword" else qvecs[i], K, mode=mode)
        modes[mode] = {
            "retrieval": timed(lambda ranked=ranked: ranked(next(cycle)), searches).__dict__,  # type: ignore[misc]
            "end_to_end": timed(lambda mode=mode: tm.search(QUERIES[next(cycle)], user_id=USER, limit=K, mode=mode),
                                searches).__dict__}
    new = itertools.count()
    write = timed(lambda: tm.add(f"The user mentioned detail number {next(new)}.", user_id=USER, type="activity"),
                  writes, 1)

    def write_then_search() -> None:
        tm.add(f"The user mentioned detail number {next(new)}.", user_id=USER, type="activity")
        search.nearest(USER, qvecs[next(cycle)], K)

    after_write = timed(write_then_search, max(5, writes // 3), 1)
    hits = [[m.id for m, _ in row] for row in search.nearest(USER, qvecs, K)]
    if graph is not None:
        graph["recall_at_10"] = _recall(store, search, embedder, vectors)
    return {"load_s": load[0], "first_search_ms": first[0] * 1000, "graph": graph, "retrieval": retrieval.__dict__,
            "end_to_end": end_to_end.__dict__, "modes": modes, "write": write.__dict__,
            "write_then_search": after_write.__dict__,
            "rss_mb": rss_mb(), "rss_data_mb": rss_mb() - base, "hits": len(hits)}


def _wait_for_graph(search) -> dict | None:  # type: ignore[no-untyped-def]
    """Seconds until the background HNSW build of a large user is ready (None: the user is searched exactly)."""
    import time

    entry = search.index.peek(USER)
    if entry is None or entry.approximate is None:
        return None
    started = time.perf_counter()
    entry.approximate.wait()
    return {"build_s": time.perf_counter() - started, "rows": entry.approximate.graph.rows,
            "bytes": entry.approximate.memory_bytes}


def _recall(store, search, embedder, vectors: np.ndarray) -> dict:  # type: ignore[no-untyped-def]
    """Recall@10 of the default search against the exact scan, for three kinds of query: new sentences of the
    corpus's kind, the benchmark's questions, and stored memories' own vectors."""
    from timemory.search import EmbeddedSearch, NumpyIndex

    from .corpus import sentences

    exact = EmbeddedSearch(store, NumpyIndex(store.dim, approximate_from=None))
    held_out = [t for t, _ in sentences(len(vectors) + 500)[len(vectors):]]
    kinds = {"new sentences (500)": embedder.embed(held_out), f"questions ({len(QUERIES)})": embedder.embed(QUERIES),
             "stored memories (500)": vectors[np.random.default_rng(3).choice(len(vectors), 500, replace=False)]}
    out = {}
    for name, queries in kinds.items():
        found = 0
        for q in queries:
            got = {m.id for m, _ in search.nearest(USER, q, 10)[0]}
            found += len(got & {m.id for m, _ in exact.nearest(USER, q, 10)[0]})
        out[name] = found / (10 * len(queries))
    hybrid = 0
    for text, q in zip(QUERIES, kinds[f"questions ({len(QUERIES)})"], strict=True):
        got = {h.id for h in search.find(USER, text, q[None, :], 10)}
        hybrid += len(got & {h.id for h in exact.find(USER, text, q[None, :], 10)})
    out[f"questions, hybrid ({len(QUERIES)})"] = hybrid / (10 * len(QUERIES))
    return out


def run_timemory_exact(n: int, texts, vectors, embedder) -> dict:  # type: ignore[no-untyped-def]
    return run_timemory(n, texts, vectors, embedder, exact=True)


def run_faiss(n: int, texts, vectors, embedder) -> dict:  # type: ignore[no-untyped-def]
    import faiss

    faiss.omp_set_num_threads(1)
    base = rss_mb()
    with stopwatch() as load:
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    qvecs = np.ascontiguousarray(embedder.embed(QUERIES), dtype=np.float32)
    searches, writes = _repeats(n, "faiss")
    cycle = itertools.cycle(range(len(QUERIES)))
    retrieval = timed(lambda: index.search(qvecs[next(cycle)][None, :], K), searches)
    end_to_end = timed(lambda: index.search(embedder.embed([QUERIES[next(cycle)]]), K), searches)
    write = timed(lambda: index.add(embedder.embed(["The user mentioned a detail."])), writes, 1)
    return {"load_s": load[0], "retrieval": retrieval.__dict__, "end_to_end": end_to_end.__dict__,
            "write": write.__dict__, "rss_mb": rss_mb(), "rss_data_mb": rss_mb() - base}


def mem0_config(folder: str, llm_base_url: str = "http://127.0.0.1:9/v1", model: str = "unused") -> dict:
    from timemory.providers import local_model_path

    return {
        "vector_store": {"provider": "qdrant", "config": {
            "collection_name": "bench", "embedding_model_dims": 384, "path": f"{folder}/qdrant"}},
        "embedder": {"provider": "huggingface", "config": {"model": str(local_model_path()), "embedding_dims": 384}},
        "llm": {"provider": "openai",
                "config": {"model": model, "api_key": "not-used", "openai_base_url": llm_base_url}},
        "history_db_path": f"{folder}/history.db",
    }


def run_mem0(n: int, texts, vectors, embedder) -> dict:  # type: ignore[no-untyped-def]
    from mem0 import Memory

    folder = tempfile.mkdtemp(prefix="bench-mem0-")
    os.environ["MEM0_DIR"] = folder
    m = Memory.from_config(mem0_config(folder))
    base = rss_mb()
    now = datetime.now(UTC).isoformat()
    with stopwatch() as load:  # what add(infer=False) stores, inserted in bulk with the shared vectors
        for i in range(0, n, 1_000):
            chunk = texts[i:i + 1_000]
            m.vector_store.insert(
                vectors=[v.tolist() for v in vectors[i:i + 1_000]],
                payloads=[{"data": c, "hash": md5(c.encode()).hexdigest(), "created_at": now, "updated_at": now,
                           "user_id": USER, "text_lemmatized": c} for c, _ in chunk],
                ids=[str(uuid.uuid4()) for _ in chunk],
            )
    qvecs = embedder.embed(QUERIES)
    searches, writes = _repeats(n, "mem0")
    cycle = itertools.cycle(range(len(QUERIES)))
    filters = {"user_id": USER}
    retrieval = timed(lambda: m.vector_store.search(query="", vectors=qvecs[next(cycle)].tolist(), top_k=K,
                                                    filters=filters), searches, 1)
    end_to_end = timed(lambda: m.search(QUERIES[next(cycle)], filters=filters, top_k=K), searches, 1)
    new = itertools.count()
    write = timed(lambda: m.add([{"role": "user", "content": f"I mentioned detail number {next(new)}."}],
                                user_id=USER, infer=False), writes, 1)
    return {"load_s": load[0], "retrieval": retrieval.__dict__, "end_to_end": end_to_end.__dict__,
            "write": write.__dict__, "rss_mb": rss_mb(), "rss_data_mb": rss_mb() - base}


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}×" if b else "n/a"


def section(data: dict[str, Any]) -> list[str]:
    rows = data["rows"]
    by = {(r["system"], r["n"]): r for r in rows}
    sizes = sorted({r["n"] for r in rows})
    out = ["## 1. Search latency, one user, top 5", "",
           f"Measured on {data['machine']['date']}: {data['machine']['machine']}; one thread. Compare the rows of this "
           "table with each other: they come from one run (figures of other sections may come from another day).",
           "",
           "Retrieval = ranking a precomputed query vector and returning the memories; end to end = `search(query)` "
           "including the query embedding (all-MiniLM-L6-v2, local). Times in ms (p50 | p95 | p99); write = add one "
           "memory, embedding included; RSS = the whole process after loading and searching (the embedder's model, "
           "~500 MB, included) and, in brackets, what loading the memories into the system added.", "",
           "| system | memories | retrieval p50 | p95 | p99 | end to end p50 | p95 | p99 | write p50 | RSS MB (data) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    names = {"timemory": "TiMemory (SQLite + numpy)", "timemory-exact": "TiMemory, exact scan only",
             "mem0": "mem0 2.2.1 (qdrant local)", "faiss": "FAISS IndexFlatIP"}
    for n in sizes:
        for system in ("timemory", "timemory-exact", "mem0", "faiss"):
            r = by.get((system, n))
            if r:
                out.append(f"| {names[system]} | {n:,} | {Stats(**r['retrieval']).row()} | "
                           f"{Stats(**r['end_to_end']).row()} | {r['write']['p50']:.2f} | "
                           f"{r['rss_mb']:.0f} ({r['rss_data_mb']:+.0f}) |")
    out += ["", "| memories | mem0 ÷ TiMemory, retrieval p95 | mem0 ÷ TiMemory, end to end p95 | "
            "TiMemory ÷ FAISS, retrieval p95 | TiMemory: first search after a write |", "|---:|---:|---:|---:|---:|"]
    for n in sizes:
        t, m, f = by.get(("timemory", n)), by.get(("mem0", n)), by.get(("faiss", n))
        if t:
            out.append(f"| {n:,} | {_ratio(m['retrieval']['p95'], t['retrieval']['p95']) if m else 'n/a'} | "
                       f"{_ratio(m['end_to_end']['p95'], t['end_to_end']['p95']) if m else 'n/a'} | "
                       f"{_ratio(t['retrieval']['p95'], f['retrieval']['p95']) if f else 'n/a'} | "
                       f"{t['write_then_search']['p50']:.1f} ms (write + search, p50) |")
    graphs = [(n, by[("timemory", n)]["graph"]) for n in sizes if (by.get(("timemory", n)) or {}).get("graph")]
    if graphs:
        out += ["", "**Large users** (above 50,000 memories): an HNSW graph (FAISS, M=32) picks candidates, built in "
                "the background after the user is loaded, and every candidate is scored exactly; rows written since "
                "the graph was built are scored exactly beside it. Until the graph is ready the exact scan serves. "
                "Recall@10 = share of the exact scan's top 10 that the default search returns.", "",
                "| memories | graph build | graph memory | " + " | ".join(
                    f"recall@10, {kind}" for kind in graphs[0][1]["recall_at_10"]) + " |",
                "|---:|---:|---:|" + "---:|" * len(graphs[0][1]["recall_at_10"])]
        for n, g in graphs:
            out.append(f"| {n:,} | {g['build_s']:.0f} s | {g['bytes'] / 2**20:.0f} MB | "
                       + " | ".join(f"{v:.4f}" for v in g["recall_at_10"].values()) + " |")
    out += ["", "**Search modes** (TiMemory, same run): vector = cosine only; keyword = BM25 only (no query "
            "embedding); hybrid = both, fused (section 8). Retrieval = ranking with the query's vector already made; "
            "end to end = `tm.search(query, mode=…)`, the query embedded by the local MiniLM on ONNX Runtime. "
            "p50 / p95 in ms.", "",
            "| memories | vector retrieval | keyword retrieval | hybrid retrieval | vector end to end | "
            "keyword end to end | hybrid end to end |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for n in sizes:
        t = by.get(("timemory", n))
        if t and "modes" in t:
            m = t["modes"]
            cells = [f"{m[mode][part]['p50']:.2f} / {m[mode][part]['p95']:.2f}"
                     for part in ("retrieval", "end_to_end") for mode in ("vector", "keyword", "hybrid")]
            out.append(f"| {n:,} | " + " | ".join(cells) + " |")
    return [*out, ""]


RUNNERS = {"timemory": run_timemory, "timemory-exact": run_timemory_exact, "mem0": run_mem0, "faiss": run_faiss}


def main(system: str, n: int) -> None:
    pin_threads()
    os.environ.setdefault("MEM0_TELEMETRY", "False")
    from timemory.providers import LocalEmbedder

    embedder = LocalEmbedder()
    embedder.embed(["load the model before any RSS baseline"])
    texts, vectors = embedded(n, embedder)
    result = RUNNERS[system](n, texts, vectors, embedder)
    print(json.dumps({"system": system, "n": n, **result}))


def measure(sizes: list[int], systems: list[str]) -> list[dict]:
    """Run every (system, size) in a fresh process; return their results."""
    import subprocess

    out = []
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "MEM0_TELEMETRY": "False",
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    from timemory.search import APPROXIMATE_FROM

    for n in sizes:
        for system in systems:
            if system == "timemory-exact" and n < APPROXIMATE_FROM:
                continue  # the same path as the default below the graph's size
            print(f"  search: {system} at {n:,} memories", flush=True)
            proc = subprocess.run([sys.executable, "-m", "bench.search", system, str(n)], env=env,
                                  capture_output=True, text=True, timeout=1200)
            if proc.returncode != 0:
                raise RuntimeError(f"{system} at {n}: {proc.stderr[-2000:]}")
            out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def summary(rows: list[dict]) -> None:
    for r in rows:
        print(f"{r['system']:>9} {r['n']:>7,}  retrieval {Stats(**r['retrieval']).row()}  "
              f"end-to-end {Stats(**r['end_to_end']).row()}  write p50 {r['write']['p50']:.2f} ms  "
              f"rss {r['rss_mb']:.0f} MB")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
