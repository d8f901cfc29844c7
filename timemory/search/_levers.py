"""Levers of message search: signals a conversation carries beyond one message's words and meaning.

Each is off at 0 and measured on and off on real conversations (``python -m bench --only locomo``; the figures and
which of them are on by default are in docs/benchmarks.md):

- **speakers**: a question naming a person ("When did Caroline …?") favours the messages that person said: their
  score gains ``speakers``;
- **neighbours**: the answer often sits one message from the best match (a question, then its answer): a message
  gains ``neighbours`` times the better score of the messages just before and after it in its session;
- **expansion**: pseudo-relevance feedback: the query's vector moves toward the mean vector of the first pass's
  ``expansion_hits`` best messages by ``expansion`` (Rocchio), and the messages are scored again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from timemory.search._ranking import top_indices

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


@dataclass(frozen=True)
class EpisodeLevers:
    speakers: float = 0.0
    neighbours: float = 0.0
    expansion: float = 0.0
    expansion_hits: int = 3

    @property
    def any(self) -> bool:
        return bool(self.speakers or self.neighbours or self.expansion)


OFF = EpisodeLevers()


def named_in(query: str, names: Sequence[str | None]) -> np.ndarray:
    """Per message: whether its speaker's name (any word of it) is a word of ``query`` (case-insensitive)."""
    words = {w.lower() for w in _WORD.findall(query)}
    hit = {name: bool(words & {w.lower() for w in _WORD.findall(name)}) for name in set(names) if name}
    return np.array([hit.get(name, False) if name else False for name in names], dtype=bool)


def with_neighbours(scores: np.ndarray, sessions: Sequence[str | None], weight: float) -> np.ndarray:
    """``scores`` plus ``weight`` times the better score of each message's neighbours in the same session (messages
    in the order they were said; a message with no neighbour in its session gains nothing)."""
    n = len(scores)
    if n < 2 or not weight:
        return scores
    same = np.array([sessions[i] == sessions[i + 1] for i in range(n - 1)], dtype=bool)
    before = np.full(n, -np.inf, np.float32)
    after = np.full(n, -np.inf, np.float32)
    before[1:] = np.where(same, scores[:-1], -np.inf)
    after[:-1] = np.where(same, scores[1:], -np.inf)
    best = np.maximum(before, after)
    return (scores + weight * np.where(np.isfinite(best), best, 0.0)).astype(np.float32)


def expanded_query(query: np.ndarray, matrix: np.ndarray, first_pass: np.ndarray, levers: EpisodeLevers) -> np.ndarray:
    """The query's unit vector moved toward the mean of the best ``expansion_hits`` rows of ``matrix`` by the first
    pass's scores."""
    top = top_indices(first_pass, levers.expansion_hits)
    if not len(top):
        return query
    moved = query + levers.expansion * matrix[top].mean(axis=0)
    norm = float(np.linalg.norm(moved))
    return (moved / norm).astype(np.float32) if norm else query
