"""The approximate (HNSW) candidates of large users: recall against the exact scan, and writes that show at once."""

from __future__ import annotations

import numpy as np
import pytest

from timemory.search import EmbeddedSearch, NumpyIndex
from timemory.store import AddMemory, ChangeMemory, DeleteMemory, Store

pytest.importorskip("faiss")

N = 3_000
USER = "large-user"


VERBS = ["plays", "loves", "is learning", "teaches", "dislikes", "collects", "writes about", "dreams of",
         "practises", "reads about"]
THINGS = ["chess", "the violin", "sailing", "green tea", "pottery", "Japanese", "jazz", "climbing", "baking bread",
          "birdwatching", "tennis", "poetry", "astronomy", "gardening", "cycling"]
PLACES = ["in Porto", "in Osaka", "in Nairobi", "with a friend", "on Sundays", "after work", "at a club",
          "since 2019", "with the kids", "every summer", "in Lyon", "online", "at night", "in winter", "alone",
          "with Ana", "in Leeds", "near the sea", "at school", "in the park"]


def sentences(n: int, seed: int) -> list[str]:
    """Distinct memory-like sentences: real embeddings have the neighbourhoods random vectors lack."""
    rng = np.random.default_rng(seed)
    out: dict[str, None] = {}
    while len(out) < n:
        out[f"The user {rng.choice(VERBS)} {rng.choice(THINGS)} {rng.choice(PLACES)} "
            f"and {rng.choice(VERBS)} {rng.choice(THINGS)} {rng.choice(PLACES)}."] = None
    return list(out)


@pytest.fixture(scope="module")
def corpus(embedder) -> tuple[list[str], np.ndarray]:  # type: ignore[no-untyped-def]
    texts = sentences(N + 700, seed=3)
    return texts, np.asarray(embedder.embed(texts), np.float32)


@pytest.fixture
def loaded(sqlite_store: Store, corpus: tuple[list[str], np.ndarray]) -> tuple[Store, np.ndarray, np.ndarray]:
    """The store with the user's N memories, their vectors, and 700 vectors of sentences they do not hold."""
    texts, vectors = corpus
    sqlite_store.memories.apply(USER, [AddMemory(content=t, type="activity", embedding=v, actor="user")
                                       for t, v in zip(texts[:N], vectors[:N], strict=True)])
    return sqlite_store, vectors[:N], vectors[N:]


def searches(store: Store) -> tuple[EmbeddedSearch, EmbeddedSearch]:
    """(approximate from 1,000 rows, exact) over the same store; the approximate one has its graph built."""
    approximate = EmbeddedSearch(store, NumpyIndex(store.dim, approximate_from=1_000, coarse_kind=None))
    exact = EmbeddedSearch(store, NumpyIndex(store.dim, approximate_from=None, coarse_kind=None))
    approximate.nearest(USER, np.ones((1, store.dim), np.float32) / np.sqrt(store.dim), 5)  # loads, starts a build
    entry = approximate.index.peek(USER)
    assert entry is not None and entry.approximate is not None
    assert entry.approximate.wait(timeout=120)
    return approximate, exact


def test_graph_candidates_find_what_the_exact_scan_finds(loaded: tuple[Store, np.ndarray, np.ndarray]) -> None:
    store, _, held_out = loaded
    approximate, exact = searches(store)
    queries = held_out[:200]
    entry = approximate.index.peek(USER)
    assert entry is not None and entry.approximate is not None
    picked = entry.approximate.candidates(queries[0], entry.n, 64, None)
    assert picked is not None and 10 <= len(picked[0]) < N // 10  # the graph, not the whole matrix, is scored
    got = approximate.nearest(USER, queries, 10)
    want = exact.nearest(USER, queries, 10)
    found = sum(len({m.id for m, _ in g} & {m.id for m, _ in w}) for g, w in zip(got, want, strict=True))
    assert found / (10 * len(queries)) >= 0.99
    # each score is the row's exact cosine, not the graph's estimate
    for g, w in zip(got, want, strict=True):
        exact_scores = {m.id: s for m, s in w}
        assert all(abs(s - exact_scores[m.id]) < 1e-5 for m, s in g if m.id in exact_scores)
    hybrid_found = 0
    for q in queries[:40]:
        g = approximate.find(USER, "sailing in porto", q[None, :], 10)
        w = exact.find(USER, "sailing in porto", q[None, :], 10)
        hybrid_found += len({h.id for h in g} & {h.id for h in w})
    assert hybrid_found / 400 >= 0.99


def test_writes_after_the_graph_show_in_the_next_search(loaded: tuple[Store, np.ndarray, np.ndarray]) -> None:
    store, vectors, held_out = loaded
    approximate, _ = searches(store)
    entry = approximate.index.peek(USER)
    assert entry is not None and entry.approximate is not None and entry.approximate.graph is not None
    graph_before = entry.approximate.graph
    target = held_out[200]

    # an added memory equal to the query comes first, though the graph has never seen it
    [added] = store.memories.apply(USER, [AddMemory(content="new fact", type="plan", embedding=target,
                                                    actor="user")])
    assert approximate.nearest(USER, target[None, :], 1)[0][0][0].id == added.memory_id
    # an existing memory moved onto another query comes first, though the graph holds its old vector
    other = held_out[201]
    victim = approximate.nearest(USER, vectors[7][None, :], 1)[0][0][0]
    store.memories.apply(USER, [ChangeMemory(memory_id=victim.id, content="moved", embedding=other)])
    top = approximate.nearest(USER, other[None, :], 1)[0][0]
    assert top[0].id == victim.id and top[1] == pytest.approx(1.0, abs=1e-5)
    # a deleted memory never comes back, though the graph still links it
    store.memories.apply(USER, [DeleteMemory(memory_id=added.memory_id)])
    assert added.memory_id not in {m.id for m, _ in approximate.nearest(USER, target[None, :], 10)[0]}
    latest = approximate.index.peek(USER)
    assert latest is not None and latest.approximate is entry.approximate  # patched, not rebuilt
    assert latest.approximate.graph is graph_before


def test_a_narrow_filter_searches_exactly(loaded: tuple[Store, np.ndarray, np.ndarray]) -> None:
    store, vectors, _ = loaded
    approximate, exact = searches(store)
    [plan] = store.memories.apply(USER, [AddMemory(content="the only plan", type="plan", embedding=vectors[3],
                                                   actor="user")])
    got = approximate.nearest(USER, vectors[3][None, :], 5, types=["plan"])
    assert [m.id for m, _ in got[0]] == [plan.memory_id]
    assert got == exact.nearest(USER, vectors[3][None, :], 5, types=["plan"])


def test_many_writes_rebuild_the_graph(loaded: tuple[Store, np.ndarray, np.ndarray]) -> None:
    store, _, held_out = loaded
    approximate, exact = searches(store)
    entry = approximate.index.peek(USER)
    assert entry is not None and entry.approximate is not None
    first = entry.approximate.graph
    fresh = held_out[300:700]  # more than 5% of the user: the next search starts a rebuild
    store.memories.apply(USER, [AddMemory(content=f"later {i}", type="activity", embedding=v, actor="user")
                                for i, v in enumerate(fresh)])
    approximate.nearest(USER, fresh[:1], 5)
    assert entry.approximate.wait(timeout=120)
    assert entry.approximate.graph is not first and entry.approximate.graph.rows == N + 400
    queries = held_out[:50]
    got, want = approximate.nearest(USER, queries, 10), exact.nearest(USER, queries, 10)
    found = sum(len({m.id for m, _ in g} & {m.id for m, _ in w}) for g, w in zip(got, want, strict=True))
    assert found / 500 >= 0.99
