"""Ranking one user's cached memories by vector, keyword or both (hybrid), with each hit's score parts.

Hybrid fusion puts both signals on one scale before mixing: the cosine similarity as it is (-1..1), and the BM25
score divided by the best BM25 score any of the user's memories got for this query (0..1, so 1 marks the memory
sharing the query's rarest words best). The fused score is ``(1 - w) * cosine + w * keyword``. On the labelled
retrieval set this calibration ties with z-scores and keeps its best over the widest range of weights, and it needs
no statistics of the user's other memories — so a weight chosen on a few hundred memories holds for a hundred
thousand. Reciprocal-rank fusion measured worse. ``python -m bench.quality --tune`` re-runs the study; the figures
are in docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from timemory.schemas import ScoreBreakdown

POOL = 50  # TiDB: nearest rows fetched in SQL to fuse with the keyword hits
KEYWORD_WEIGHT = 0.35  # chosen on the labelled set: see docs/benchmarks.md, "Search quality"
VECTOR_WEIGHT = 1.0 - KEYWORD_WEIGHT


@dataclass(frozen=True)
class Ranked:
    row: int
    breakdown: ScoreBreakdown


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, best first (ties by index)."""
    if k <= 0 or len(scores) == 0:
        return np.zeros(0, np.int64)
    part = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    return part[np.lexsort((part, -scores[part]))]


def rank_keyword(rows: np.ndarray, bm25: np.ndarray, k: int) -> list[Ranked]:
    """The ``k`` best rows by BM25 (rows sharing no term with the query are not results)."""
    return [Ranked(int(rows[i]), ScoreBreakdown(mode="keyword", keyword=float(bm25[i]), fused=float(bm25[i])))
            for i in top_indices(bm25, k)]


def rank_vector(rows: np.ndarray, cosine: np.ndarray, k: int, bm25: np.ndarray) -> list[Ranked]:
    """The ``k`` best rows by cosine; ``bm25`` (aligned with ``rows``) is reported, not ranked by."""
    out = []
    for i in top_indices(cosine, k):
        out.append(Ranked(int(rows[i]), ScoreBreakdown(mode="vector", vector=float(cosine[i]), fused=float(cosine[i]),
                                                       keyword=float(bm25[i]))))
    return out


def fuse_scores(cosine: np.ndarray, bm25: np.ndarray, best_bm25: float,
                keyword_weight: float = KEYWORD_WEIGHT) -> np.ndarray:
    """The fused score of each row: ``(1 - w) * cosine + w * bm25 / best_bm25``."""
    keyword = bm25 / best_bm25 if best_bm25 > 0 else 0.0
    return ((1.0 - keyword_weight) * cosine + keyword_weight * keyword).astype(np.float32)


def fuse(
    rows: np.ndarray,
    cosine: np.ndarray,
    bm25: np.ndarray,
    best_bm25: float,
    k: int,
    *,
    keyword_weight: float = KEYWORD_WEIGHT,
) -> list[Ranked]:
    """Hybrid top ``k`` of candidate ``rows`` given each one's ``cosine`` and ``bm25`` (0: no shared word);
    ``best_bm25`` is the best BM25 any allowed row got for the query. The caller passes every row that could make
    the top ``k``."""
    vector_weight = 1.0 - keyword_weight
    keyword = bm25 / best_bm25 if best_bm25 > 0 else np.zeros_like(bm25)
    fused = fuse_scores(cosine, bm25, best_bm25, keyword_weight)
    out = []
    for i in top_indices(fused, k):
        out.append(Ranked(int(rows[i]), ScoreBreakdown(
            mode="hybrid", vector=float(cosine[i]), keyword=float(bm25[i]), keyword_norm=float(keyword[i]),
            vector_weight=vector_weight, keyword_weight=keyword_weight, fused=float(fused[i]))))
    return out
