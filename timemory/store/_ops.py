"""Write operations. Every write to memories goes through ``Store.apply`` as a list of these, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from timemory.schemas import Actor


@dataclass
class AddMemory:
    content: str
    type: str
    embedding: np.ndarray
    status: str = "active"
    actor: Actor = "pipeline"
    reason: str | None = None
    source_message_ids: list[str] = field(default_factory=list)
    source_session_id: str | None = None
    created_at: datetime | None = None
    # Memories this one replaces: each becomes outdated, superseded_by = this memory (one OUTDATE event each).
    supersedes: list[str] = field(default_factory=list)
    memory_id: str | None = None  # chosen by the store unless given (imports keep their ids)
    superseded_by: str | None = None  # imports only: keeps an existing supersession link
    updated_at: datetime | None = None
    subject: str | None = None  # the subject key (schemas.SUBJECTS), when extraction gave one
    provenance: str | None = None  # turns | session (schemas.Memory.provenance)


@dataclass
class ChangeMemory:
    memory_id: str
    content: str | None = None
    type: str | None = None
    status: str | None = None
    embedding: np.ndarray | None = None
    event: str = "EDIT"  # UPDATE (pipeline merge), EDIT (by hand), OUTDATE, REACTIVATE
    actor: Actor = "user"
    reason: str | None = None
    source_message_ids: list[str] = field(default_factory=list)
    # When set, the change is refused (ConflictError) unless the memory's updated_at is still this value.
    expected_updated_at: datetime | None = None
    at: datetime | None = None  # when it happened (a replayed conversation's date); default: now
    superseded_by: str | None = None  # an OUTDATE: the memory that replaces this one
    # "session": the sources added are a whole session's messages, so the memory's provenance is no finer after it
    provenance: str | None = None


@dataclass
class DeleteMemory:
    memory_id: str
    actor: Actor = "user"
    reason: str | None = None


Op = AddMemory | ChangeMemory | DeleteMemory
