"""Applying write operations inside one open transaction: the rows, the events, the supersession links."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from timemory._validation import check_status, check_type
from timemory.errors import ConflictError, EmbeddingMismatchError, InvalidInputError, NotFoundError
from timemory.schemas import AppliedChange, Memory, MemoryEvent
from timemory.store._models import MemoryEventRow, MemoryRow
from timemory.store._ops import AddMemory, ChangeMemory, DeleteMemory, Op
from timemory.store._rows import naive_utc, new_id


class MemoryWriter:
    """Turns operations into rows and event rows; the caller owns the transaction (and so all-or-nothing)."""

    def __init__(self, embedding_model: str, dim: int) -> None:
        self.embedding_model = embedding_model
        self.dim = dim

    def apply(
        self, s: Session, user_id: str, ops: Sequence[Op], now: datetime, run_id: str | None
    ) -> list[AppliedChange]:
        changes: list[AppliedChange] = []
        for op in ops:
            if isinstance(op, AddMemory):
                changes.extend(self._add(s, user_id, op, now, run_id))
            elif isinstance(op, ChangeMemory):
                changes.append(self._change(s, user_id, op, now, run_id))
            elif isinstance(op, DeleteMemory):
                changes.append(self._delete(s, user_id, op, now, run_id))
            else:  # pragma: no cover - typing guards this
                raise InvalidInputError(f"Unknown operation {op!r}")
            s.flush()
        return changes

    def owned(self, s: Session, user_id: str, memory_id: str) -> MemoryRow:
        row = s.get(MemoryRow, (user_id, memory_id))
        if row is None:
            raise NotFoundError(f"No memory '{memory_id}' for user '{user_id}'.")
        return row

    def check_vector(self, embedding: np.ndarray) -> np.ndarray:
        vec = np.asarray(embedding, dtype=np.float32).ravel()
        if vec.shape[0] != self.dim:
            raise EmbeddingMismatchError(
                f"Embedding has {vec.shape[0]} dimensions; this database stores {self.dim} "
                f"('{self.embedding_model}'). Run `python -m timemory reembed` after changing embedders."
            )
        if not np.all(np.isfinite(vec)):
            raise InvalidInputError("Embedding contains NaN or infinite values.")
        return vec

    def _add(self, s: Session, user_id: str, op: AddMemory, now: datetime, run_id: str | None) -> list[AppliedChange]:
        check_type(op.type)
        check_status(op.status)
        created = naive_utc(op.created_at) or now
        updated = naive_utc(op.updated_at) or created
        mid = op.memory_id or new_id()
        if op.memory_id and taken(s, mid):
            raise InvalidInputError(f"A memory with id '{mid}' already exists.")
        s.add(MemoryRow(
            id=mid, user_id=user_id, content=op.content, type=op.type, status=op.status,
            embedding=self.check_vector(op.embedding), created_at=created, updated_at=updated,
            source_message_ids=list(op.source_message_ids), source_session_id=op.source_session_id,
            superseded_by=op.superseded_by, outdated_at=updated if op.status == "outdated" else None,
            subject=op.subject, provenance=op.provenance,
        ))
        s.add(MemoryEventRow(
            memory_id=mid, user_id=user_id, event="ADD", actor=op.actor, new_content=op.content,
            new_status=op.status, new_type=op.type, reason=op.reason,
            source_message_ids=list(op.source_message_ids), run_id=run_id, created_at=created,
        ))
        changes = [AppliedChange(event="ADD", memory_id=mid, content=op.content, reason=op.reason)]
        for old_id in dict.fromkeys(op.supersedes):
            old = self.owned(s, user_id, old_id)
            old_status = old.status
            old.status, old.superseded_by, old.outdated_at, old.updated_at = "outdated", mid, created, created
            s.add(MemoryEventRow(
                memory_id=old_id, user_id=user_id, event="OUTDATE", actor=op.actor, old_content=old.content,
                new_content=old.content, old_status=old_status, new_status="outdated", reason=op.reason,
                source_message_ids=list(op.source_message_ids), related_memory_id=mid, run_id=run_id,
                created_at=created,
            ))
            changes.append(AppliedChange(event="OUTDATE", memory_id=old_id, content=old.content,
                                         related_memory_id=mid, reason=op.reason))
        return changes

    def restore(self, s: Session, user_id: str, memory: Memory, embedding: np.ndarray,
                events: Sequence[MemoryEvent]) -> None:
        """Write an exported memory back as it was: its row (id, times, status, links) and its events as recorded."""
        if taken(s, memory.id):
            raise InvalidInputError(f"A memory with id '{memory.id}' already exists.")
        s.add(MemoryRow(
            id=memory.id, user_id=user_id, content=memory.content, type=check_type(memory.type),
            status=check_status(memory.status), embedding=self.check_vector(embedding),
            created_at=naive_utc(memory.created_at), updated_at=naive_utc(memory.updated_at),
            source_message_ids=list(memory.source_message_ids), source_session_id=memory.source_session_id,
            superseded_by=memory.superseded_by, outdated_at=naive_utc(memory.outdated_at), subject=memory.subject,
            provenance=memory.provenance,
        ))
        for e in events:
            if e.memory_id != memory.id:
                raise InvalidInputError(f"An event of memory '{e.memory_id}' is listed under memory '{memory.id}'.")
            s.add(MemoryEventRow(
                memory_id=memory.id, user_id=user_id, event=e.event, actor=e.actor, old_content=e.old_content,
                new_content=e.new_content, old_status=e.old_status, new_status=e.new_status, old_type=e.old_type,
                new_type=e.new_type, reason=e.reason, source_message_ids=list(e.source_message_ids),
                related_memory_id=e.related_memory_id, run_id=e.run_id, created_at=naive_utc(e.created_at),
            ))

    def _change(self, s: Session, user_id: str, op: ChangeMemory, now: datetime, run_id: str | None) -> AppliedChange:
        row = self.owned(s, user_id, op.memory_id)
        if op.expected_updated_at is not None and row.updated_at != naive_utc(op.expected_updated_at):
            raise ConflictError(
                f"Memory '{row.id}' changed since it was shown (now: {row.content[:80]!r}); nothing was saved. "
                "Reload and edit again."
            )
        old_content, old_status, old_type = row.content, row.status, row.type
        if op.superseded_by is not None:
            self.owned(s, user_id, op.superseded_by)  # the replacement is one of this user's memories
        now = naive_utc(op.at) or now
        check_type(op.type or row.type)
        check_status(op.status or row.status)
        if op.content is not None and op.content != row.content:
            if op.embedding is None:
                raise InvalidInputError("New content needs its new embedding.")
            row.content = op.content
            row.embedding = self.check_vector(op.embedding)
        if op.type is not None:
            row.type = op.type
        event = op.event
        if op.status is not None and op.status != row.status:
            row.status = op.status
            outdating = op.status == "outdated"
            row.outdated_at = now if outdating else None
            row.superseded_by = op.superseded_by if outdating else None
            if event == "EDIT" and op.content is None and op.type is None:  # a pure status change is named as such
                event = "OUTDATE" if outdating else "REACTIVATE"
        if op.source_message_ids:
            row.source_message_ids = list(dict.fromkeys([*(row.source_message_ids or []), *op.source_message_ids]))
        if op.provenance == "session":
            row.provenance = "session"
        row.updated_at = now
        s.add(MemoryEventRow(
            memory_id=row.id, user_id=user_id, event=event, actor=op.actor, old_content=old_content,
            new_content=row.content, old_status=old_status, new_status=row.status, old_type=old_type,
            new_type=row.type, reason=op.reason, source_message_ids=list(op.source_message_ids), run_id=run_id,
            related_memory_id=op.superseded_by, created_at=now,
        ))
        return AppliedChange(event=event, memory_id=row.id, content=row.content,  # type: ignore[arg-type]
                             old_content=old_content, related_memory_id=op.superseded_by, reason=op.reason)

    def _delete(self, s: Session, user_id: str, op: DeleteMemory, now: datetime, run_id: str | None) -> AppliedChange:
        row = self.owned(s, user_id, op.memory_id)
        s.add(MemoryEventRow(
            memory_id=row.id, user_id=user_id, event="DELETE", actor=op.actor, old_content=row.content,
            old_status=row.status, old_type=row.type, reason=op.reason, run_id=run_id, created_at=now,
        ))
        s.execute(
            update(MemoryRow)
            .where(MemoryRow.user_id == user_id, MemoryRow.superseded_by == row.id)
            .values(superseded_by=None)
        )
        content = row.content
        s.delete(row)
        return AppliedChange(event="DELETE", memory_id=op.memory_id, old_content=content, reason=op.reason)


def taken(s: Session, memory_id: str) -> bool:
    """Whether any user has a memory with this id."""
    return s.scalar(select(MemoryRow.id).where(MemoryRow.id == memory_id)) is not None
