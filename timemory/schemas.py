"""Typed values that cross the public API and the LLM boundary (pydantic)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

MemoryType = Literal["personal", "preference", "activity", "plan", "health", "professional"]
MemoryStatus = Literal["active", "outdated"]
EventType = Literal["ADD", "UPDATE", "OUTDATE", "REACTIVATE", "EDIT", "DELETE"]
Actor = Literal["pipeline", "user"]
Action = Literal["ADD", "UPDATE", "OUTDATE", "NONE"]
Role = Literal["user", "assistant", "system"]

MEMORY_TYPES: tuple[str, ...] = get_args(MemoryType)
MEMORY_STATUSES: tuple[str, ...] = get_args(MemoryStatus)

# Things about a person that have one current value at a time: a new fact with the same subject key may replace the
# memory that holds it, whatever their wording (consolidation is shown both). Described to the model in prompts.py.
SUBJECTS: tuple[str, ...] = (
    "home", "household", "relationship", "job", "work_hours", "workplace", "education", "commute", "car", "phone",
    "computer", "bank", "diet", "alcohol", "smoking", "exercise", "gym", "sleep", "weight", "medication", "pets",
    "children_school", "language_learning", "favourite_music", "pregnancy",
)
SUBJECT_CHARS = 32


def subject_key(value: Any) -> str | None:
    """A subject key as stored: lower case, words joined by ``_``, at most :data:`SUBJECT_CHARS`; ``None`` for none."""
    if not isinstance(value, str):
        return None
    key = "_".join(value.lower().replace("-", " ").split())[:SUBJECT_CHARS]
    return key if key and key not in ("null", "none", "other") else None


# A subject key as every model stores it: normalised by :func:`subject_key` whatever was given.
SubjectKey = Annotated[str | None, BeforeValidator(subject_key)]


Provenance = Literal["turns", "session"]


class Memory(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    user_id: str
    content: str
    type: MemoryType
    status: MemoryStatus
    created_at: datetime
    updated_at: datetime
    source_message_ids: list[str] = Field(default_factory=list)
    source_session_id: str | None = None
    superseded_by: str | None = None
    outdated_at: datetime | None = None
    subject: SubjectKey = Field(default=None, description="what single-valued thing about the user this memory "
                                                         "holds (its subject key), when known")
    provenance: Provenance | None = Field(
        default=None, description="turns: its source messages are the ones it was learnt from (its exchange, or in a "
        "run over a whole session the user's messages closest to it in meaning); session: none was close enough, so "
        "they are every message of the session it was learnt in; null: stored by hand")


class MemoryEdit(BaseModel):
    """One hand edit. ``None`` leaves a field as it is; ``seen_updated_at`` (the ``updated_at`` the person saw) makes
    the edit fail with a conflict instead of landing on a memory that changed meanwhile."""

    model_config = ConfigDict(frozen=True)

    memory_id: str
    content: str | None = None
    type: str | None = None
    status: str | None = None
    seen_updated_at: datetime | None = None


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
    fused: float = Field(description="the score the results are ordered by")

    def explain(self) -> str:
        """One line a person can check: e.g. ``0.65 × meaning 0.46 + 0.35 × words 1.00 (BM25 2.01 of the best
        2.01; kofi) = 0.65``."""
        words = f" ({', '.join(self.matched_terms)})" if self.matched_terms else ""
        if self.mode == "hybrid" and self.vector_weight is not None and self.keyword_weight is not None:
            norm, bm25 = self.keyword_norm or 0, self.keyword or 0
            best = f" of the best {bm25 / norm:.2f}" if norm else ""
            terms = f"; {', '.join(self.matched_terms)}" if self.matched_terms else ""
            return (f"{self.vector_weight:.2f} × meaning {self.vector or 0:.2f} + {self.keyword_weight:.2f} × words "
                    f"{norm:.2f} (BM25 {bm25:.2f}{best}{terms}) = {self.fused:.2f}")
        if self.mode == "keyword":
            return f"words: BM25 {self.fused:.2f}{words}"
        return f"meaning: cosine {self.fused:.2f}" + (f"; shares words{words}" if words else "")


class SearchHit(BaseModel):
    memory: Memory
    score: float = Field(description="the ranking score: the fused score in hybrid mode, the cosine similarity in "
                                     "vector mode, the BM25 score in keyword mode; higher is closer")
    scores: ScoreBreakdown | None = Field(default=None, description="the score's parts")

    @property
    def similarity(self) -> float:
        """How close in meaning the memory is to the query: the cosine part when known, else the score."""
        return self.scores.vector if self.scores and self.scores.vector is not None else self.score


class MemoryEvent(BaseModel):
    id: str
    memory_id: str
    user_id: str
    event: EventType
    actor: Actor
    old_content: str | None = None
    new_content: str | None = None
    old_status: str | None = None
    new_status: str | None = None
    old_type: str | None = None
    new_type: str | None = None
    reason: str | None = None
    source_message_ids: list[str] = Field(default_factory=list)
    related_memory_id: str | None = None
    run_id: str | None = None
    created_at: datetime


class MemoryChange(BaseModel):
    """What one pipeline run did to one memory: its state just before and just after the run."""

    memory_id: str
    events: list[EventType]
    before: Memory | None = None
    after: Memory | None = None

    @property
    def kind(self) -> str:
        """added, updated, outdated, reactivated, edited or deleted (the most telling of its events)."""
        for event, kind in (("ADD", "added"), ("DELETE", "deleted"), ("OUTDATE", "outdated"),
                            ("REACTIVATE", "reactivated"), ("UPDATE", "updated"), ("EDIT", "edited")):
            if event in self.events:
                return kind
        return "changed"


class RunDiff(BaseModel):
    run_id: str
    user_id: str
    created_at: datetime | None = None
    status: str | None = None
    changes: list[MemoryChange] = Field(default_factory=list)

    def of_kind(self, kind: str) -> list[MemoryChange]:
        return [c for c in self.changes if c.kind == kind]


class Experiment(BaseModel):
    """A replay (and evaluation) of a dataset under one configuration."""

    id: str
    name: str
    dataset_path: str
    dataset_sha256: str
    dataset_format: str
    user_prefix: str
    status: str = "running"
    config: dict[str, Any] = Field(default_factory=dict)
    counts: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    wall_seconds: float = 0.0
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ChatSession(BaseModel):
    id: str
    user_id: str
    title: str
    created_at: datetime
    updated_at: datetime
    message_count: int = 0


class Message(BaseModel):
    id: str
    user_id: str
    session_id: str | None
    role: Role
    content: str
    created_at: datetime


class UserSummary(BaseModel):
    id: str
    created_at: datetime
    sessions: int = 0
    memories_active: int = 0
    memories_outdated: int = 0


# --- what the LLM returns (structured output) ---------------------------------------------------------------------


class ExtractedFact(BaseModel):
    content: str = Field(description="one self-contained fact about the user, in the third person")
    type: MemoryType
    # Optional: a model that leaves it out (older servers, tiny models) still gets a fact.
    subject: SubjectKey = Field(default=None, description="the subject key, for a fact about something with one "
                                                          "current value")


class FactExtraction(BaseModel):
    facts: list[ExtractedFact]


class ConsolidationDecision(BaseModel):
    fact: int = Field(description="index of the new fact this decision is about")
    action: Action
    memory_id: int | None = Field(description="short id of the existing memory for UPDATE/OUTDATE/NONE, else null")
    content: str | None = Field(description="for UPDATE: the merged text; otherwise null")
    reason: str


class ConsolidationPlan(BaseModel):
    decisions: list[ConsolidationDecision]


class ReflectionChange(BaseModel):
    memory_id: int = Field(description="short id of the memory to retire")
    action: Literal["OUTDATE", "MERGE"]
    by: int = Field(description="short id of the memory that replaces it (OUTDATE) or is kept (MERGE)")
    content: str | None = Field(default=None, description="for MERGE: the merged text; otherwise null")
    reason: str = ""


class ReflectionPlan(BaseModel):
    changes: list[ReflectionChange]


class ReflectionReport(BaseModel):
    """What one reflection pass over a user's memories did."""

    user_id: str
    memories: int = Field(description="active memories when the pass began")
    groups: int = Field(description="groups that needed a look")
    runs: list[str] = Field(default_factory=list, description="the pipeline run of each group asked (kind reflection)")
    reviewed: int = 0
    outdated: int = Field(default=0, description="memories marked outdated (replaced or merged away)")
    merged: int = Field(default=0, description="memories that took in a duplicate")
    failed: int = 0
    left: int = Field(default=0, description="groups not asked in this pass (max_groups, or stopped)")
    stopped: bool = False
    llm_calls: int = 0
    prompt_tokens: int = 0


class Judgement(BaseModel):
    correct: bool
    reason: str


# --- the pipeline trace ----------------------------------------------------------------------------------------------


class Candidate(BaseModel):
    fact: int
    short_id: int
    memory_id: str
    content: str
    type: str
    status: str
    score: float  # cosine similarity to the fact
    via: Literal["nearest", "subject", "type", "change", "group"] = Field(
        default="nearest", description="why it was shown: among the fact's nearest memories, the same subject "
                                       "key, the nearest of the same type, the wider look for a fact worded as a "
                                       "change, or (reflection) a member of the group reviewed")


class Decision(BaseModel):
    fact: int
    action: Action
    memory_id: str | None = None
    content: str | None = None
    reason: str
    accepted: bool = True
    rejected_because: str | None = None


class AppliedChange(BaseModel):
    event: EventType
    memory_id: str
    content: str | None = None
    old_content: str | None = None
    related_memory_id: str | None = None
    reason: str | None = None


JobStatus = Literal["pending", "running", "done", "failed"]


class Job(BaseModel):
    """Memory work in the durable queue (``tm.jobs``): an exchange to learn from, and how its processing went."""

    id: str
    user_id: str
    kind: str
    status: JobStatus
    attempts: int = 0
    max_attempts: int = 3
    error: str | None = None
    run_id: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class JobLease:
    """A worker's hold on a running job: writes made under it land only while the worker still holds the job."""

    job_id: str
    worker: str


class PipelineResult(BaseModel):
    run_id: str
    user_id: str
    session_id: str | None = None
    kind: Literal["exchange", "reflection"] = Field(
        default="exchange", description="learning from an exchange, or a reflection pass over stored memories")
    status: Literal["ok", "failed", "empty"] = "ok"
    facts: list[ExtractedFact] = Field(default_factory=list)
    candidates: list[Candidate] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    changes: list[AppliedChange] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    llm_calls: int = 0
    embedding_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per stage")
    source_message_ids: list[str] = Field(default_factory=list)
    llm_model: str | None = None
    embedding_model: str | None = None
    created_at: datetime | None = None
    answer_keys: list[str] = Field(default_factory=list, description="the answer cache's keys this run used")

    @property
    def changed_memory_ids(self) -> list[str]:
        return list(dict.fromkeys(c.memory_id for c in self.changes))
