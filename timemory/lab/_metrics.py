"""Ranking metrics of one question's hits against its evidence, and a bootstrap interval over questions.

A question's hits are read as the evidence ids each one *covers*: an episode covers its own message, a memory the
messages it was learnt from (never through a session-wide provenance). Rank-based metrics count a hit as relevant
only when it covers an evidence id no better hit covered, so finding one turn twice (as a message and as its fact)
is not counted as finding two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

BOOTSTRAP_SEED = 0
BOOTSTRAP_RESAMPLES = 2000


def first_rank(covered: Sequence[set[str]], evidence: set[str]) -> int | None:
    """The 1-based rank of the first hit covering an evidence id, or None when no hit does."""
    for i, ids in enumerate(covered, start=1):
        if ids & evidence:
            return i
    return None


def gains(covered: Sequence[set[str]], evidence: set[str]) -> list[int]:
    """Per hit: 1 when it covers an evidence id that no better hit covered, else 0."""
    seen: set[str] = set()
    out = []
    for ids in covered:
        new = (ids & evidence) - seen
        out.append(1 if new else 0)
        seen |= new
    return out


def ndcg(covered: Sequence[set[str]], evidence: set[str], k: int) -> float:
    """NDCG@k with binary gains (:func:`gains`); the ideal ranking puts one evidence turn at each of the first
    ``min(len(evidence), k)`` places."""
    if not evidence:
        return 0.0
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains(covered[:k], evidence)))
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(evidence), k)))
    return dcg / ideal


def all_found(covered: Sequence[set[str]], evidence: set[str], k: int) -> bool:
    """Whether the top k hits together cover every evidence id."""
    union: set[str] = set()
    for ids in covered[:k]:
        union |= ids
    return bool(evidence) and evidence <= union


def bootstrap_ci(values: Sequence[float], *, seed: int = BOOTSTRAP_SEED,
                 resamples: int = BOOTSTRAP_RESAMPLES) -> list[float]:
    """The 95% percentile bootstrap interval of the mean of ``values`` (questions resampled with replacement, with a
    fixed seed so the same values always give the same interval), as ``[lo, hi]`` rounded to 4 places."""
    data = np.asarray(values, dtype=np.float64)
    if len(data) == 0:
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]
