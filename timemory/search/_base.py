"""The one search interface. :class:`EmbeddedSearch` ranks in this process (SQLite, MySQL-protocol servers);
:class:`TiDBSearch` ranks vectors in TiDB's SQL. Both rank words with the same per-user BM25 index and fuse alike,
so a mode means the same on every backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from timemory.schemas import Memory, SearchHit, SearchMode
from timemory.search._matrix import NumpyIndex


class Search(Protocol):
    index: NumpyIndex  # each user's cached rows: vectors (embedded) or only the keyword index (TiDB)

    def find(
        self,
        user_id: str,
        query: str,
        vectors: np.ndarray | None,
        k: int,
        *,
        mode: SearchMode = "hybrid",
        types: Sequence[str] | None = None,
        statuses: Sequence[str] | None = ("active",),
        version: int | None = None,
    ) -> list[SearchHit]:
        """Top-k memories of this user for one query by ``mode``, each with its score parts. ``vectors`` is the
        query's unit vector (one row; may be None in keyword mode). ``version`` is the user's ``memory_version``
        when the caller has just read it (saves reading it again)."""
        ...

    def nearest(
        self,
        user_id: str,
        queries: np.ndarray,
        k: int,
        *,
        types: Sequence[str] | None = None,
        statuses: Sequence[str] | None = ("active",),
        version: int | None = None,
    ) -> list[list[tuple[Memory, float]]]:
        """Top-k memories of this user per query vector by cosine alone, as (memory, cosine), best first."""
        ...
