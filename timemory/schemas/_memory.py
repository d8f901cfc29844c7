"""Memories, their history, sessions, messages and users."""

from __future__ import annotations

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
    name: str | None = None  # who said it by name (OpenAI's message ``name``), when the caller gave one


class NewMessage(BaseModel):
    """A message on its way in: what callers send as ``{"role", "content", "id"?, "created_at"?}``, checked once at
    the door (see ``Engine.check_messages``) and carried typed from there."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str
    id: str | None = None
    created_at: datetime | None = None  # aware; None: the time it is stored
    name: str | None = None  # the speaker's name, as in OpenAI's messages (two people talking, a group chat)


class UserStats(BaseModel):
    id: str
    created_at: datetime
    sessions: int = 0
    memories_active: int = 0
    memories_outdated: int = 0
