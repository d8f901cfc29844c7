"""``NumpyIndex``: each user's memories cached in memory as a normalised float32 matrix with a BM25 index beside it,
refreshed when the user's ``memory_version`` moves and patched row by row on this process's own writes. Vector
ranking is one matrix-vector product and ``argpartition``; large users get a cheaper pre-selection pass first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from timemory.schemas import MEMORY_STATUSES, MEMORY_TYPES, SearchMode
from timemory.search import _approximate as approx
from timemory.search import _coarse as coarse
from timemory.search._approximate import Approximate
from timemory.search._cache import MAX_BYTES, MAX_USERS, UserCache
from timemory.search._coarse import Coarse
from timemory.search._kernels import bm25_of, dot_rows, dot_rows_at
from timemory.search._keyword import KeywordIndex
from timemory.search._ranking import VECTOR_WEIGHT, Ranked, fuse, fuse_scores, rank_keyword, rank_vector
from timemory.store import MemoryState

TYPE_CODE = {t: i for i, t in enumerate(MEMORY_TYPES)}
STATUS_CODE = {s: i for i, s in enumerate(MEMORY_STATUSES)}


DELETED = -2  # status code of a row deleted after its matrix was loaded (rows are not removed until the next load)


@dataclass
class UserVectors:
    """One version of a user's vectors. Rows ``[:n]`` of ``buffer`` belong to it; a later version made by
    :meth:`NumpyIndex.patch` may append rows after ``n`` into the same buffer (and the same ``ids``/``rows``), so
    readers of this version are never disturbed."""

    version: int
    n: int
    ids: list[str]
    buffer: np.ndarray  # (capacity, d) float32, unit rows
    types: np.ndarray  # (n,) int8 codes
    statuses: np.ndarray  # (n,) int8 codes, DELETED for rows deleted since the load
    rows: dict[str, int]  # memory id -> row
    masks: dict[tuple[object, object], np.ndarray | None] = field(default_factory=dict)
    coarse: Coarse | None = None  # a cheaper copy of the matrix for the pre-selection of large users
    keywords: KeywordIndex = field(default_factory=KeywordIndex)  # BM25 over the rows' contents
    approximate: Approximate | None = None  # the HNSW candidates of a large user, shared by the versions of a load

    @property
    def matrix(self) -> np.ndarray:
        return self.buffer[: self.n]

    @property
    def nbytes(self) -> int:
        """What the cache holds for this user: the vectors (with room to grow), the keyword index and any graph."""
        graph = self.approximate.memory_bytes if self.approximate is not None else 0
        return int(self.buffer.nbytes) + self.keywords.nbytes + 56 * len(self.ids) + graph


# A user's memories as columns: ids, types, statuses, unit vectors, contents (in a fixed order: ties rank the same)
Loader = Callable[[str], tuple[list[str], list[str], list[str], list[np.ndarray], list[str]]]


class NumpyIndex:
    """Cosine search over one user's memories, cached in memory (:class:`UserCache`: LRU over users, bounded by
    users and bytes); exact, except for users large enough for an HNSW graph (:mod:`timemory.search._approximate`).

    A write by this process patches the cached matrix (:meth:`patch`) instead of dropping it, so the next search
    does not reload every vector of the user; a write by another process moves the version and forces a reload."""

    def __init__(self, dim: int, max_users: int = MAX_USERS, max_bytes: int = MAX_BYTES, coarse_from: int = 20_000,
                 coarse_kind: str | None = "measure", candidates: tuple[int, int] = (512, 4096),
                 approximate_from: int | None = approx.APPROXIMATE_FROM, approximate_candidates: int = 64) -> None:
        self.dim = dim
        # From this many rows (None: never) an HNSW graph picks the candidates, built in the background
        self.approximate_from = approximate_from if approximate_from is not None and approx.available() else None
        self.approximate_candidates = approximate_candidates
        # From this many rows a cheaper pass (``coarse``: int8 or float16) picks candidates that float32 then ranks
        # exactly; the kind is the one that measures fastest on this machine (``coarse_kind`` forces one).
        self.coarse_from = coarse_from
        self._kind = coarse_kind
        self.candidates = candidates
        self.cache: UserCache[UserVectors] = UserCache(max_users, max_bytes)

    def invalidate(self, user_id: str | None = None) -> None:
        self.cache.invalidate(user_id)

    def peek(self, user_id: str) -> UserVectors | None:
        return self.cache.peek(user_id)

    def _put(self, user_id: str, entry: UserVectors, *, loaded: bool) -> None:
        """Cache ``entry``. A load from the database always wins (it is what the database says now, even if a
        user deleted elsewhere started counting versions again); a patch never replaces a newer entry."""
        self.cache.put(user_id, entry, keep=None if loaded else (lambda cached: cached.version >= entry.version))

    def vectors(self, user_id: str, version: int, load: Loader) -> UserVectors:
        cached = self.cache.get(user_id)
        if cached is not None and cached.version == version:
            return cached
        ids, types, statuses, vectors, contents = load(user_id)
        matrix = np.vstack(vectors).astype(np.float32, copy=False) if vectors else np.zeros((0, self.dim), np.float32)
        entry = UserVectors(
            version=version, n=len(ids), ids=list(ids), buffer=np.ascontiguousarray(matrix),
            types=np.array([TYPE_CODE.get(t, -1) for t in types], dtype=np.int8),
            statuses=np.array([STATUS_CODE.get(s, -1) for s in statuses], dtype=np.int8),
            rows={mid: i for i, mid in enumerate(ids)}, keywords=KeywordIndex.build(contents),
        )
        self._put(user_id, entry, loaded=True)
        return entry

    def patch(self, user_id: str, before: UserVectors, locked_version: int, touched: Sequence[str],
              rows: Sequence[MemoryState]) -> None:
        """Turn ``before`` into the version a committed write made (``locked_version`` + 1), given the rows the
        write ``touched`` as they are now (a touched id without a row was deleted). Does nothing unless ``before``
        is exactly the version that write started from."""
        if before.version != locked_version:
            return
        found = {r[0]: r for r in rows}
        new_ids = [mid for mid in dict.fromkeys(touched) if mid in found and mid not in before.rows]
        n = before.n + len(new_ids)
        buffer, ids, index, keywords = before.buffer, before.ids, before.rows, before.keywords
        coarse_copy = before.coarse
        if len(ids) != before.n:  # another version already appended after n: start again from the database
            self.invalidate(user_id)
            return
        if n > buffer.shape[0]:  # grow by half again, so appends cost amortised O(1) rows
            grown = np.empty((max(n, buffer.shape[0] * 3 // 2 + 16), self.dim), np.float32)
            grown[: before.n] = buffer[: before.n]
            buffer, coarse_copy = grown, None  # the coarse copy is rebuilt at the next search
        types = np.concatenate([before.types, np.zeros(len(new_ids), np.int8)])
        statuses = np.concatenate([before.statuses, np.zeros(len(new_ids), np.int8)])
        for offset, mid in enumerate(new_ids):
            ids.append(mid)
            index[mid] = before.n + offset
        changed: list[int] = []
        for mid in touched:
            row = index.get(mid)
            if row is None:
                continue
            if mid not in found:
                statuses[row] = DELETED
                keywords.remove(row)
                continue
            _, type_, status, vector, content = found[mid]
            types[row], statuses[row] = TYPE_CODE.get(type_, -1), STATUS_CODE.get(status, -1)
            buffer[row] = vector
            keywords.set(row, content)
            changed.append(row)
        if coarse_copy is not None:
            coarse.update(coarse_copy, changed, buffer[changed])
        graph = before.approximate
        if graph is not None:
            graph.track(buffer, n)
            graph.changed(changed)
        self._put(user_id, UserVectors(version=locked_version + 1, n=n, ids=ids, buffer=buffer, types=types,
                                       statuses=statuses, rows=index, keywords=keywords, coarse=coarse_copy,
                                       approximate=graph), loaded=False)

    def rank(
        self,
        entry: UserVectors,
        queries: np.ndarray,
        k: int,
        types: Sequence[str] | None,
        statuses: Sequence[str] | None,
    ) -> list[list[tuple[str, float]]]:
        """Top-k (memory id, cosine similarity) per query row, best first."""
        n = entry.n
        if n == 0 or k <= 0:
            return [[] for _ in range(len(queries))]
        mask = self.mask(entry, types, statuses)
        if mask is not None and not mask.any():
            return [[] for _ in range(len(queries))]
        allowed = n if mask is None else int(mask.sum())
        kk = min(k, allowed)
        out: list[list[tuple[str, float]]] = []
        graph = self._approximate(entry)
        coarse_copy = self._coarse(entry)
        # one pass for all queries
        batch = None if coarse_copy or graph or len(queries) == 1 else queries @ entry.matrix.T
        for qi, query in enumerate(queries):
            found = self._graph_top(entry, graph, query, kk, mask) if graph else None
            if found is None and coarse_copy:
                found = self._coarse_top(entry, coarse_copy, query, kk, mask, allowed)
            if found is None:
                row = batch[qi] if batch is not None else dot_rows(entry.matrix, query)
                if mask is not None:
                    row[~mask] = -np.inf
                top = np.argpartition(-row, kk - 1)[:kk] if kk < n else np.arange(n)
                found = top, row[top]
            top, scores = found
            order = np.argsort(-scores, kind="stable")
            out.append([(str(entry.ids[r]), float(sc)) for r, sc in zip(top[order], scores[order], strict=True)
                        if np.isfinite(sc)][:kk])
        return out

    @staticmethod
    def mask(entry: UserVectors, types: Sequence[str] | None, statuses: Sequence[str] | None) -> np.ndarray | None:
        """The rows a search may return (None: all of them), cached per filter on the entry."""
        key = (tuple(types) if types is not None else None, tuple(statuses) if statuses is not None else None)
        if key not in entry.masks:
            mask = entry.statuses != DELETED
            if types is not None:
                mask &= np.isin(entry.types, [TYPE_CODE[t] for t in types if t in TYPE_CODE])
            if statuses is not None:
                mask &= np.isin(entry.statuses, [STATUS_CODE[s] for s in statuses if s in STATUS_CODE])
            entry.masks[key] = None if mask.all() else mask
        return entry.masks[key]

    def find(
        self,
        entry: UserVectors,
        query: np.ndarray | None,
        terms: list[str],
        k: int,
        mode: SearchMode,
        types: Sequence[str] | None,
        statuses: Sequence[str] | None,
    ) -> list[Ranked]:
        """Top-k rows of one query by ``mode`` with their score parts; ``query`` (the unit vector) may be None in
        keyword mode."""
        mask = self.mask(entry, types, statuses)
        if entry.n == 0 or k <= 0 or (mask is not None and not mask.any()):
            return []
        kw_rows, bm25 = self.keyword_hits(entry, terms, mask)
        if mode == "keyword":
            ranked = rank_keyword(kw_rows, bm25, k)
            if query is not None and ranked:  # the cosine is reported, not ranked by
                rows = np.array([r.row for r in ranked])
                for r, cosine in zip(ranked, (entry.matrix[rows] @ query).tolist(), strict=True):
                    r.breakdown.vector = cosine
            return ranked
        assert query is not None
        if mode == "hybrid":
            return self._hybrid(entry, query, kw_rows, bm25, k, mask)
        found = self.rank(entry, query[None, :], k, types, statuses)[0]
        rows = np.array([entry.rows[mid] for mid, _ in found], np.int64)
        return rank_vector(rows, np.array([s for _, s in found], np.float32), k, bm25_of(entry.n, kw_rows, bm25)[rows])

    @staticmethod
    def keyword_hits(entry: UserVectors, terms: list[str], mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, BM25) of the rows a search may return that share a term with the query."""
        if not terms:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        rows, bm25 = entry.keywords.scores(terms, entry.n)
        if mask is not None and len(rows):
            keep = mask[rows]
            rows, bm25 = rows[keep], bm25[keep]
        return rows, bm25

    def _hybrid(self, entry: UserVectors, query: np.ndarray, kw_rows: np.ndarray, bm25: np.ndarray, k: int,
                mask: np.ndarray | None) -> list[Ranked]:
        allowed = entry.n if mask is None else int(mask.sum())
        keyword = bm25_of(entry.n, kw_rows, bm25)
        best = float(bm25.max()) if len(bm25) else 0.0
        graph = self._approximate(entry)
        found = graph.candidates(query, entry.n, max(self.approximate_candidates, 4 * k), mask) if graph else None
        if found is not None:
            return self._graph_hybrid(entry, query, *found, kw_rows, keyword, best, k)
        coarse_copy = self._coarse(entry)
        if coarse_copy is not None:
            # Fuse every row with its approximate cosine, re-rank the best candidates exactly. A row left out
            # scores approximately at most the lowest candidate, so exactly at most that plus the pass's error.
            approx = fuse_scores(coarse.scores(coarse_copy, query, entry.n), keyword, best)
            if mask is not None:
                approx[~mask] = -np.inf
            margin = VECTOR_WEIGHT * coarse.error(coarse_copy, query)
            for candidates in candidate_sets(approx, allowed, k, self.candidates):
                # the same kernel as the full pass, so a row scores the same either way (to the last bit)
                ranked = fuse(candidates, dot_rows(entry.matrix[candidates], query), keyword[candidates], best, k)
                if ranked and ranked[-1].breakdown.fused >= float(approx[candidates].min()) + margin:
                    return ranked
        cosine = dot_rows(entry.matrix, query)
        rows = np.arange(entry.n) if mask is None else np.flatnonzero(mask)
        return fuse(rows, cosine[rows], keyword[rows], best, k)

    def _approximate(self, entry: UserVectors) -> Approximate | None:
        """The entry's graph when one is ready; starts building one in the background when due."""
        if self.approximate_from is None or entry.n < self.approximate_from:
            return None
        graph = entry.approximate
        if graph is None:
            graph = entry.approximate = Approximate(self.dim)
            graph.track(entry.buffer, entry.n)
        if graph.due(entry.n):
            graph.build_in_background(entry.matrix)
        return graph if graph.graph is not None else None

    @staticmethod
    def _graph_hybrid(entry: UserVectors, query: np.ndarray, found: np.ndarray, graph_rows: np.ndarray,
                      kw_rows: np.ndarray, keyword: np.ndarray, best: float, k: int) -> list[Ranked]:
        """Hybrid top-k from the graph's candidates and the keyword hits that can still beat them. A row the graph
        left out is taken to be at most as near as its farthest candidate (the graph's premise, whose recall is
        measured), so a keyword hit outside them is scored only if that cosine with its own BM25 could reach the
        k-th fused score: a common word then costs a few rows, not thousands."""
        strongest = kw_rows if len(kw_rows) <= k else kw_rows[np.argpartition(-keyword[kw_rows], k - 1)[:k]]
        pool = np.union1d(found, strongest)
        cosine = dot_rows_at(entry.matrix, pool, query)
        fused = fuse_scores(cosine, keyword[pool], best)
        if len(kw_rows) > len(strongest) and len(fused) >= k:
            kth = float(np.partition(fused, len(fused) - k)[len(fused) - k])
            graphed = np.isin(pool, graph_rows)
            farthest = float(cosine[graphed].min()) if graphed.any() else 1.0
            reach = fuse_scores(np.full(len(kw_rows), farthest, np.float32), keyword[kw_rows], best)
            marked = np.zeros(entry.n, bool)
            marked[pool] = True
            extra = kw_rows[(reach >= kth) & ~marked[kw_rows]]
            if len(extra):
                pool = np.concatenate([pool, extra])
                cosine = np.concatenate([cosine, dot_rows_at(entry.matrix, extra, query)])
        return fuse(pool, cosine, keyword[pool], best, k)

    def _graph_top(self, entry: UserVectors, graph: Approximate, query: np.ndarray, k: int,
                   mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
        """Top-k (rows, exact scores) among the graph's candidates; None where the graph cannot serve the filter."""
        found = graph.candidates(query, entry.n, max(self.approximate_candidates, 4 * k), mask)
        if found is None or len(found[0]) == 0:
            return None
        rows = found[0]
        exact = dot_rows_at(entry.matrix, rows, query)
        kk = min(k, len(rows))
        best = np.argpartition(-exact, kk - 1)[:kk]
        return rows[best], exact[best]

    def _coarse(self, entry: UserVectors) -> Coarse | None:
        """The entry's pre-selection copy, built on first use, or None where the float32 scan is the better one."""
        if entry.n < self.coarse_from:
            return None
        if self._kind == "measure":
            entry.coarse = coarse.fastest(entry.buffer, entry.n, dot_rows)
            self._kind = entry.coarse.kind if entry.coarse else None
        if self._kind is None:
            return None
        if entry.coarse is None or entry.coarse.kind != self._kind or entry.coarse.capacity < entry.n:
            entry.coarse = coarse.build(self._kind, entry.buffer, entry.n)
        return entry.coarse

    def _coarse_top(self, entry: UserVectors, coarse_copy: Coarse, query: np.ndarray, k: int, mask: np.ndarray | None,
                    allowed: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Exact top-k (rows, scores) via coarse candidates and a float32 re-rank; None when not provably exact."""
        approx = coarse.scores(coarse_copy, query, entry.n)
        if mask is not None:
            approx[~mask] = -np.inf
        margin = coarse.error(coarse_copy, query)
        for candidates in candidate_sets(approx, allowed, k, self.candidates):
            exact = dot_rows(entry.matrix[candidates], query)
            best = np.argpartition(-exact, k - 1)[:k]
            # a row left out scores approximately at most the lowest candidate, so exactly at most that plus the error
            if float(exact[best].min()) >= float(approx[candidates].min()) + margin:
                return candidates[best], exact[best]
        return None  # a row outside the candidates might still beat the k-th: use the float32 pass


def candidate_sets(approx: np.ndarray, allowed: int, k: int, sizes: tuple[int, int]) -> Iterator[np.ndarray]:
    """The rows with the best approximate scores: ``sizes[0]`` first (a few hundred), then ``sizes[1]`` (a few
    thousand) if those cannot be proven to hold the top k — re-ranking them exactly costs far less than one pass over
    every row."""
    usable = [size for size in (max(8 * k, sizes[0]), max(64 * k, sizes[1])) if size < allowed]
    if not usable:
        return
    widest = np.argpartition(-approx, usable[-1] - 1)[: usable[-1]]
    for size in usable[:-1]:
        yield widest[np.argpartition(-approx[widest], size - 1)[:size]]
    yield widest
