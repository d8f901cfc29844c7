"""Approximate candidates for large users: an HNSW graph (FAISS) over a snapshot of one user's rows.

Only the choice of candidates is approximate. Every candidate is scored again from the float32 matrix, and rows
written after the snapshot (appended, or changed in place) join the candidates and are scored exactly, so a write
shows in the very next search. The graph is built in a background thread once a user passes
:data:`APPROXIMATE_FROM` rows, and built again when the rows written since its snapshot pass a share of the user;
until a graph is ready, searches take the exact path. How many of the exact top 10 it finds (recall@10) is measured
in docs/benchmarks.md.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

APPROXIMATE_FROM = 50_000  # rows; below this the exact scan is fast enough (docs/benchmarks.md, section 1)
GRAPH_NEIGHBOURS = 32  # HNSW's M: links per node
BUILD_DEPTH = 80  # efConstruction
SEARCH_DEPTH = 128  # efSearch for the default number of candidates (it grows with them)
REBUILD_SHARE = 0.05  # rebuild once the rows written since the snapshot pass this share of the user
MIN_ALLOWED_SHARE = 0.5  # a filter that leaves fewer rows than this share searches exactly (HNSW degrades)


def available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class Graph:
    index: Any  # faiss.IndexHNSWFlat over rows [0, rows) of the snapshot, FAISS ids = row numbers
    rows: int


class Approximate:
    """One user's graph, shared by every version of the user's cached rows that came from one load (a patch hands it
    on); a reload from the database starts a new one. Thread-safe: the graph is read-only once built."""

    def __init__(self, dim: int, *, neighbours: int = GRAPH_NEIGHBOURS, build_depth: int = BUILD_DEPTH,
                 search_depth: int = SEARCH_DEPTH, rebuild_share: float = REBUILD_SHARE) -> None:
        self.dim = dim
        self.neighbours, self.build_depth, self.search_depth = neighbours, build_depth, search_depth
        self.rebuild_share = rebuild_share
        self.graph: Graph | None = None
        self._stale: set[int] = set()  # rows below graph.rows whose vector or text changed after the snapshot
        self._recent: set[int] | None = None  # rows changed while a build runs
        self._building = False
        self._latest: tuple[np.ndarray | None, int] = (None, 0)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ upkeep
    def track(self, buffer: np.ndarray, n: int) -> None:
        """The newest version of the user's rows: ``buffer[:n]`` (a patch may have moved them to a bigger buffer)."""
        with self._lock:
            if n >= self._latest[1]:
                self._latest = (buffer, n)

    def changed(self, rows: list[int]) -> None:
        """Rows a write changed in place (call after the new vectors are in the matrix)."""
        with self._lock:
            self._stale.update(rows)
            if self._recent is not None:
                self._recent.update(rows)

    def due(self, n: int) -> bool:
        """Whether a (re)build should start for a user with ``n`` rows."""
        with self._lock:
            if self._building:
                return False
            if self.graph is None:
                return True
            behind = n - self.graph.rows + len(self._stale)
            return behind > self.rebuild_share * n

    def build(self, matrix: np.ndarray) -> bool:
        """Build a graph over ``matrix`` (the user's rows now) and install it; rows that differ from the snapshot
        by the end of the build (see :meth:`track`) stay exact. False if a build was already running."""
        with self._lock:
            if self._building:
                return False
            self._building, self._recent = True, set()
        try:
            snapshot = np.array(matrix, dtype=np.float32, copy=True)
            index = self._graph_of(snapshot)
            with self._lock:
                buffer, n = self._latest
            now = buffer[:n] if buffer is not None else snapshot
            rows = len(snapshot)
            differs = np.flatnonzero((now[:rows] != snapshot[: len(now)]).any(axis=1))
            with self._lock:
                self.graph = Graph(index, rows)
                self._stale = {int(r) for r in differs} | (self._recent or set())
        finally:
            with self._lock:
                self._building, self._recent = False, None
        return True

    def build_in_background(self, matrix: np.ndarray) -> None:
        thread = threading.Thread(target=self._build_logged, args=(matrix,), daemon=True, name="timemory-hnsw")
        with self._lock:
            self._thread = thread
        thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a build under way (benchmarks and tests); True when a graph is ready."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.graph is not None

    def _build_logged(self, matrix: np.ndarray) -> None:
        try:
            self.build(matrix)
        except Exception:  # a failed build leaves the exact path in place; the next search may try again
            log.exception("building the approximate index failed")

    def _graph_of(self, snapshot: np.ndarray) -> Any:
        import faiss

        index = faiss.IndexHNSWFlat(self.dim, self.neighbours, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.build_depth
        index.add(np.ascontiguousarray(snapshot))
        return index

    # ------------------------------------------------------------------ search
    def candidates(self, query: np.ndarray, n: int, count: int,
                   mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
        """(rows to score exactly, the graph's own part of them) for one unit ``query`` over ``n`` rows: the graph's
        ``count`` best, every row written since its snapshot and, with a ``mask``, only rows it allows. None:
        search exactly instead (no graph yet, or a filter too narrow for the graph)."""
        graph = self.graph
        if graph is None:
            return None
        if mask is not None and mask.sum() < MIN_ALLOWED_SHARE * n:
            return None
        import faiss

        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from faiss's stubs
        params.efSearch = max(self.search_depth, 2 * count)
        bitmap = None
        if mask is not None:
            bitmap = np.packbits(mask[: graph.rows], bitorder="little")
            params.sel = faiss.IDSelectorBitmap(graph.rows, faiss.swig_ptr(bitmap))
        _, ids = graph.index.search(np.ascontiguousarray(query[None, :], dtype=np.float32), count, params=params)
        found = ids[0][ids[0] >= 0]
        with self._lock:
            stale = np.fromiter(self._stale, np.int64, len(self._stale))
        extra = np.concatenate([stale, np.arange(graph.rows, n, dtype=np.int64)])
        if mask is not None and len(extra):
            extra = extra[mask[extra]]
        found = found.astype(np.int64)
        return np.unique(np.concatenate([found, extra[extra < n]])), found

    @property
    def memory_bytes(self) -> int:
        """What the graph holds: its own copy of the vectors and the links."""
        graph = self.graph
        if graph is None:
            return 0
        return graph.rows * (self.dim * 4 + self.neighbours * 2 * 4 + 8)
