"""The per-user cache: least recently used users leave first, by user count and by bytes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from timemory.search import NumpyIndex
from timemory.search._cache import UserCache


@dataclass
class Blob:
    nbytes: int
    version: int = 0


def test_bytes_bound_evicts_the_least_recently_used_first() -> None:
    cache: UserCache[Blob] = UserCache(max_users=100, max_bytes=1_000)
    for user in "abcd":
        cache.put(user, Blob(300))
    assert cache.users == 3 and cache.nbytes == 900 and cache.peek("a") is None  # 1,200 bytes: "a" left
    cache.get("b")  # "b" is now the most recently used: "c" goes next
    cache.put("e", Blob(300))
    assert cache.peek("c") is None and cache.peek("b") is not None and cache.nbytes == 900
    cache.put("huge", Blob(5_000))  # alone above the bound, the newest entry stays
    assert cache.users == 1 and cache.peek("huge") is not None and cache.nbytes == 5_000
    cache.invalidate("huge")
    assert cache.users == 0 and cache.nbytes == 0


def test_user_bound_and_keep() -> None:
    cache: UserCache[Blob] = UserCache(max_users=2, max_bytes=10**9)
    cache.put("a", Blob(1, version=3))
    assert not cache.put("a", Blob(1, version=2), keep=lambda cached: cached.version >= 2)
    assert cache.peek("a") == Blob(1, version=3)
    cache.put("b", Blob(1))
    cache.put("c", Blob(1))
    assert cache.peek("a") is None and cache.users == 2
    replaced = Blob(7)
    cache.put("b", replaced)  # replacing an entry counts its new size only
    assert cache.nbytes == 8 and cache.peek("b") is replaced


def test_vector_index_counts_what_users_hold() -> None:
    def load(n: int):  # type: ignore[no-untyped-def]
        vectors = list(np.random.default_rng(n).normal(size=(n, 4)).astype(np.float32))
        return lambda _user: ([f"m{i}" for i in range(n)], ["plan"] * n, ["active"] * n, vectors,
                              [f"plans a trip to city {i}" for i in range(n)])

    sizes = {n: NumpyIndex(4, approximate_from=None).vectors("u", 1, load(n)).nbytes for n in (10, 100, 150)}
    assert sizes[10] > 10 * 4 * 4 and sizes[10] < sizes[100] < sizes[150]  # vectors and keyword index both count
    index = NumpyIndex(4, max_bytes=sizes[10] + sizes[150], approximate_from=None)
    index.vectors("small", 1, load(10))
    index.vectors("large", 1, load(100))
    assert index.cache.users == 2 and index.cache.nbytes == sizes[10] + sizes[100]
    index.vectors("small", 1, load(10))  # a hit: "small" is now the most recently used
    index.vectors("larger", 1, load(150))
    assert index.peek("large") is None and index.peek("small") is not None
    assert index.cache.nbytes == sizes[10] + sizes[150]


def test_settings_size_the_caches(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from timemory import Settings
    from timemory.wiring import build_engine

    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path}/t.db", data_dir=tmp_path,  # type: ignore[call-arg]
                        openai_api_key=None, openai_base_url=None, cache_mb=3, approximate_from=0)
    engine = build_engine(settings)
    assert engine.search_index.index.cache.max_bytes == 3 * 2**20
    assert engine.search_index.index.approximate_from is None  # 0: always exact
    assert engine.episodes.cache.max_bytes == 3 * 2**20
