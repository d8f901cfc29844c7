"""The pipeline trace and the durable queue's jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from timemory.schemas._llm import ExtractedFact
from timemory.schemas._memory import Action, EventType


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
