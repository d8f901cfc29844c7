"""Which stored memories consolidation shows the model for each new fact.

Cosine similarity alone does not find every memory a fact replaces: "lives in Paris with two cats" and "moved to
Berlin" are barely alike (cosine 0.32), and among hundreds of memories a new job can rank below five unrelated ones.
So besides its nearest memories above the similarity threshold, a fact brings (measured in docs/benchmarks.md,
"Changes that reach consolidation"):

* ``subject`` — the active memories with the same subject key ("home", "job", "relationship"...), whatever their
  wording, when extraction gave the fact one (the key is optional: a model may leave it out);
* ``type`` — its nearest active memories of the same type, above a lower floor;
* ``change`` — for a fact worded like a change ("moved", "now", "quit", "no longer"...), a wider look among the
  active memories of the same type.

Every extra memory only reaches the model: what happens to it is still the model's validated decision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from timemory.schemas import ExtractedFact, Memory, SearchMode
from timemory.search import Search
from timemory.store import Store

Via = Literal["nearest", "subject", "type", "change"]

# Words that announce that something stopped being true.
CHANGE_WORDS = re.compile(
    r"\b(now|no longer|not any ?more|anymore|moved|relocated|switched|changed|quit|stopped|gave up|given up|left|"
    r"joined|started|became|new|instead|retired|promoted|graduated|divorced|separated|broke up|engaged|married|"
    r"sold|bought|cancell?ed|replaced|died|passed away|lost|sober|since)\b",
    re.IGNORECASE,
)


def reads_like_change(text: str) -> bool:
    return CHANGE_WORDS.search(text) is not None


@dataclass(frozen=True)
class CandidatePolicy:
    """How many memories of each kind a fact brings to consolidation (0 turns a kind off)."""

    nearest: int = 5  # by the search mode below, kept when the cosine reaches ``threshold``
    threshold: float = 0.35
    subject: int = 3  # the most recently changed active memories with the fact's subject key
    same_type: int = 2  # nearest active memories of the fact's type with a cosine of at least ``type_floor``
    type_floor: float = 0.25
    change: int = 3  # for a fact worded like a change: nearest active memories of its type above ``change_floor``
    change_floor: float = 0.1
    mode: SearchMode = "hybrid"  # of the nearest look

    @classmethod
    def nearest_only(cls, k: int = 5, threshold: float = 0.35) -> CandidatePolicy:
        """Only the nearest memories above the threshold (how candidates were chosen before)."""
        return cls(nearest=k, threshold=threshold, subject=0, same_type=0, change=0)


def _take(found: dict[str, tuple[Memory, float, Via]], memories: list[tuple[Memory, float]], via: Via,
          floor: float | None, limit: int) -> None:
    """Add up to ``limit`` memories not found yet whose cosine reaches ``floor``."""
    added = 0
    for memory, score in memories:
        if added >= limit:
            return
        if (floor is None or score >= floor) and memory.id not in found:
            found[memory.id] = (memory, score, via)
            added += 1


def find_candidates(search: Search, store: Store, policy: CandidatePolicy, user_id: str,
                    facts: list[ExtractedFact], vectors: np.ndarray,
                    version: int) -> list[list[tuple[Memory, float, Via]]]:
    """Per fact, the memories to show with their cosine to the fact and why each came; each memory at most once per
    fact, in the order of the looks above."""
    out = []
    for fact, vector in zip(facts, vectors, strict=True):
        found: dict[str, tuple[Memory, float, Via]] = {}
        if policy.nearest:
            hits = search.find(user_id, fact.content, vector, policy.nearest, mode=policy.mode,
                               statuses=("active", "outdated"), version=version)
            _take(found, [(h.memory, h.similarity) for h in hits if h.memory is not None], "nearest",
                  policy.threshold, policy.nearest)
        if policy.subject and fact.subject:
            same = store.memories.with_subject(user_id, fact.subject, limit=policy.subject)
            _take(found, [(m, float(v @ vector)) for m, v in same], "subject", None, policy.subject)
        change = policy.change if reads_like_change(fact.content) else 0
        if policy.same_type or change:
            # one ranked list serves both looks: the change look goes on where the type look stopped
            typed = search.nearest(user_id, vector[None, :], max(policy.same_type, change) + len(found),
                                   types=(fact.type,), statuses=("active",), version=version)[0]
            _take(found, typed, "type", policy.type_floor, policy.same_type)
            _take(found, typed, "change", policy.change_floor, change)
        out.append(list(found.values()))
    return out
