"""What a search returns: memory and episode hits with their score parts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from timemory.schemas._memory import Memory, MemoryStatus, MemoryType

SearchMode = Literal["hybrid", "vector", "keyword"]
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "vector", "keyword")


class ScoreBreakdown(BaseModel):
    """Why a memory ranked where it did. In hybrid mode
    ``fused = vector_weight * vector + keyword_weight * keyword_norm``, where ``keyword_norm`` is the memory's BM25
    score divided by the best BM25 score among the user's memories for this query; in vector mode ``fused`` is the
    cosine similarity, in keyword mode the BM25 score."""

    mode: SearchMode
    vector: float | None = Field(default=None, description="cosine similarity of the memory to the query (-1..1)")
    keyword: float | None = Field(default=None,
                                  description="BM25 score of the memory for the query's words (0: none shared)")
    keyword_norm: float | None = Field(default=None,
                                       description="BM25 over the best BM25 for this query (0..1; hybrid)")
    matched_terms: list[str] = Field(default_factory=list,
                                     description="the query's words found in the memory (compared by their stems)")
    vector_weight: float | None = None
    keyword_weight: float | None = None
    levers: float | None = Field(default=None, description="what message search's levers added (the speaker named, "
                                                           "the neighbouring messages): fused includes it")
    fused: float = Field(description="the score the results are ordered by")

    def explain(self) -> str:
        """One line a person can check: e.g. ``0.65 × meaning 0.46 + 0.35 × words 1.00 (BM25 2.01 of the best
        2.01; kofi) = 0.65``."""
        words = f" ({', '.join(self.matched_terms)})" if self.matched_terms else ""
        if self.mode == "hybrid" and self.vector_weight is not None and self.keyword_weight is not None:
            norm, bm25 = self.keyword_norm or 0, self.keyword or 0
            best = f" of the best {bm25 / norm:.2f}" if norm else ""
            terms = f"; {', '.join(self.matched_terms)}" if self.matched_terms else ""
            gain = f" + levers {self.levers:.2f}" if self.levers else ""
            return (f"{self.vector_weight:.2f} × meaning {self.vector or 0:.2f} + {self.keyword_weight:.2f} × words "
                    f"{norm:.2f} (BM25 {bm25:.2f}{best}{terms}){gain} = {self.fused:.2f}")
        if self.mode == "keyword":
            return f"words: BM25 {self.fused:.2f}{words}"
        return f"meaning: cosine {self.fused:.2f}" + (f"; shares words{words}" if words else "")


SearchScope = Literal["memories", "episodes", "all"]
SEARCH_SCOPES: tuple[SearchScope, ...] = ("memories", "episodes", "all")


Speaker = Literal["user", "assistant", "system", "summary"]


class LearntMemory(BaseModel):
    """A memory as an episode lists it: one learnt from that message."""

    id: str
    content: str
    type: MemoryType
    status: MemoryStatus


class Episode(BaseModel):
    """One stored message as search finds it: the turn itself, with what was learnt from it; or a session's current
    summary (speaker "summary", dated when it was last updated)."""

    message_id: str
    user_id: str
    session_id: str | None
    speaker: Speaker = Field(description="who said it (user or assistant), or summary for a session's summary")
    content: str
    created_at: datetime
    name: str | None = Field(default=None, description="the speaker's name, when the message carries one")
    learnt: list[LearntMemory] = Field(default_factory=list, description="the memories learnt from this message")


class SearchHit(BaseModel):
    """A memory (``kind`` "memory") or a stored message (``kind`` "episode") that matched a query."""

    kind: Literal["memory", "episode"] = "memory"
    memory: Memory | None = None
    episode: Episode | None = None
    score: float = Field(description="the ranking score: the fused score in hybrid mode, the cosine similarity in "
                                     "vector mode, the BM25 score in keyword mode; higher is closer")
    scores: ScoreBreakdown | None = Field(default=None, description="the score's parts")
    sources: list[Episode] = Field(default_factory=list, description="a memory's source episodes: the messages it "
                                   "was learnt from (filled when the search's scope holds episodes)")

    @property
    def similarity(self) -> float:
        """How close in meaning the hit is to the query: the cosine part when known, else the score."""
        return self.scores.vector if self.scores and self.scores.vector is not None else self.score

    @property
    def text(self) -> str:
        return self.memory.content if self.memory is not None else self.episode.content if self.episode else ""

    @property
    def id(self) -> str:
        """The memory's id, or the episode's message id."""
        return self.memory.id if self.memory is not None else self.episode.message_id if self.episode else ""

    @property
    def user_id(self) -> str:
        return self.memory.user_id if self.memory is not None else self.episode.user_id if self.episode else ""
