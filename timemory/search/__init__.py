"""Search: one interface (:class:`Search`) with an embedded and a TiDB implementation, chosen by the backend."""

from timemory.search._approximate import APPROXIMATE_FROM
from timemory.search._base import Search
from timemory.search._cache import MAX_BYTES
from timemory.search._embedded import EmbeddedSearch
from timemory.search._episodes import DEFAULT_LEVERS, EpisodeEntry, EpisodeIndex
from timemory.search._levers import EpisodeLevers
from timemory.search._matrix import NumpyIndex
from timemory.search._ranking import KEYWORD_WEIGHT, VECTOR_WEIGHT
from timemory.search._tidb import TiDBSearch
from timemory.store import Store


def build_search(store: Store, *, cache_bytes: int = MAX_BYTES,
                 approximate_from: int | None = APPROXIMATE_FROM) -> Search:
    """The search for ``store``, with a cache of each user's rows of at most ``cache_bytes``: vectors ranked in
    TiDB's SQL on TiDB (its own HNSW index serves large tables), in this process elsewhere. Build one per store and
    pass it to whatever searches it (the engine and its variants share it)."""
    tidb = store.backend == "tidb"
    index = NumpyIndex(store.dim, max_bytes=cache_bytes, approximate_from=None if tidb else approximate_from)
    return TiDBSearch(store, index) if tidb else EmbeddedSearch(store, index)


__all__ = [
    "APPROXIMATE_FROM",
    "DEFAULT_LEVERS",
    "KEYWORD_WEIGHT",
    "VECTOR_WEIGHT",
    "EmbeddedSearch",
    "EpisodeEntry",
    "EpisodeIndex",
    "EpisodeLevers",
    "NumpyIndex",
    "Search",
    "TiDBSearch",
    "build_search",
]
