"""What the LLM returns (structured output), and what a reflection pass reports."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from timemory.schemas._memory import Action, MemoryType, SubjectKey


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
