"""Conversions between database rows and the public pydantic models, and the time conventions (naive UTC)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from timemory._time import as_utc
from timemory.schemas import ChatSession, Memory, MemoryEvent, Message
from timemory.store._models import MemoryEventRow, MemoryRow, MessageRow, SessionRow

# Memory columns without the vector: every read that does not rank or re-embed selects only these.
MEMORY_COLUMNS = [c for c in MemoryRow.__table__.columns if c.name != "embedding"]


aware = as_utc  # the database keeps naive UTC: what it gives back is made aware here


def naive_utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


def new_id() -> str:
    return str(uuid.uuid4())


def memory_from(m: Any) -> Memory:
    """A Memory from a result row's mapping (``row._mapping``) over :data:`MEMORY_COLUMNS`."""
    return Memory(
        id=m["id"], user_id=m["user_id"], content=m["content"], type=m["type"], status=m["status"],
        created_at=aware(m["created_at"]), updated_at=aware(m["updated_at"]),
        source_message_ids=list(m["source_message_ids"] or []), source_session_id=m["source_session_id"],
        superseded_by=m["superseded_by"], outdated_at=aware(m["outdated_at"]), subject=m["subject"],
        provenance=m["provenance"],
    )


def event_from(row: MemoryEventRow) -> MemoryEvent:
    return MemoryEvent(
        id=str(row.seq), memory_id=row.memory_id, user_id=row.user_id, event=row.event,  # type: ignore[arg-type]
        actor=row.actor, old_content=row.old_content, new_content=row.new_content,  # type: ignore[arg-type]
        old_status=row.old_status, new_status=row.new_status, old_type=row.old_type, new_type=row.new_type,
        reason=row.reason, source_message_ids=list(row.source_message_ids or []),
        related_memory_id=row.related_memory_id, run_id=row.run_id,
        created_at=aware(row.created_at),  # type: ignore[arg-type]
    )


EVENT_COLUMNS = list(MemoryEventRow.__table__.columns)


def event_from_columns(m: Any) -> MemoryEvent:
    """A MemoryEvent from a row mapping over :data:`EVENT_COLUMNS`, without re-validating what the database holds."""
    return MemoryEvent.model_construct(
        id=str(m["seq"]), memory_id=m["memory_id"], user_id=m["user_id"], event=m["event"], actor=m["actor"],
        old_content=m["old_content"], new_content=m["new_content"], old_status=m["old_status"],
        new_status=m["new_status"], old_type=m["old_type"], new_type=m["new_type"], reason=m["reason"],
        source_message_ids=list(m["source_message_ids"] or []), related_memory_id=m["related_memory_id"],
        run_id=m["run_id"], created_at=aware(m["created_at"]),
    )


def message_from(row: MessageRow) -> Message:
    return Message(
        id=row.message_id, user_id=row.user_id, session_id=row.session_id, role=row.role,  # type: ignore[arg-type]
        content=row.content, created_at=aware(row.created_at), name=row.name,  # type: ignore[arg-type]
    )


def session_from(row: SessionRow, message_count: int) -> ChatSession:
    return ChatSession(
        id=row.id, user_id=row.user_id, title=row.title, created_at=aware(row.created_at),  # type: ignore[arg-type]
        updated_at=aware(row.updated_at), message_count=message_count,  # type: ignore[arg-type]
    )


def brief(exc: BaseException) -> str:
    """The database's own message, one line, without the SQL statement or parameters (they may hold content)."""
    orig = getattr(exc, "orig", None)
    msg = str(orig) if orig is not None else str(exc).split("\n")[0]
    return msg[:300]
