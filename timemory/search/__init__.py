"""Search: one interface (:class:`Search`) with an embedded and a TiDB implementation, chosen by the backend."""

import threading
import weakref

from timemory.search import coarse
from timemory.search.approximate import APPROXIMATE_FROM, Approximate
from timemory.search.base import Search
from timemory.search.cache import MAX_BYTES, UserCache
from timemory.search.embedded import EmbeddedSearch
from timemory.search.episodes import EpisodeEntry, EpisodeIndex
from timemory.search.kernels import dot_rows, dot_rows_at
from timemory.search.keyword import KeywordIndex, query_terms, terms
from timemory.search.matrix import NumpyIndex, UserVectors
from timemory.search.ranking import KEYWORD_WEIGHT, VECTOR_WEIGHT, fuse
from timemory.search.tidb import TiDBSearch, tidb_cosine_statement, tidb_search_statement
from timemory.store import Store

_searches: weakref.WeakKeyDictionary[Store, Search] = weakref.WeakKeyDictionary()
_episodes: weakref.WeakKeyDictionary[Store, EpisodeIndex] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def search_for(store: Store, *, cache_bytes: int = MAX_BYTES,
               approximate_from: int | None = APPROXIMATE_FROM) -> Search:
    """The store's search, made on first use and shared after (one cache of each user's rows per store): vectors
    ranked in TiDB's SQL on TiDB (its own HNSW index serves large tables), in this process elsewhere. The sizes
    apply when it is made."""
    with _lock:
        found = _searches.get(store)
        if found is None:
            tidb = store.backend == "tidb"
            index = NumpyIndex(store.dim, max_bytes=cache_bytes, approximate_from=None if tidb else approximate_from)
            found = _searches[store] = TiDBSearch(store, index) if tidb else EmbeddedSearch(store, index)
        return found



def episodes_for(store: Store, *, cache_bytes: int = MAX_BYTES) -> EpisodeIndex:
    """The store's episode index, made on first use and shared after (ranked in this process on every backend)."""
    with _lock:
        found = _episodes.get(store)
        if found is None:
            found = _episodes[store] = EpisodeIndex(store, max_bytes=cache_bytes)
        return found


__all__ = [
    "APPROXIMATE_FROM",
    "Approximate",
    "UserCache",
    "KEYWORD_WEIGHT",
    "KeywordIndex",
    "VECTOR_WEIGHT",
    "coarse",
    "EmbeddedSearch",
    "EpisodeEntry",
    "EpisodeIndex",
    "NumpyIndex",
    "Search",
    "TiDBSearch",
    "UserVectors",
    "dot_rows",
    "dot_rows_at",
    "episodes_for",
    "fuse",
    "query_terms",
    "search_for",
    "terms",
    "tidb_cosine_statement",
    "tidb_search_statement",
]
