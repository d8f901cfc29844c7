"""Rolling session summaries: each new version is a row, so a session's summary keeps its history."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import func, select, update

from timemory.schemas import Message
from timemory.store._database import Database
from timemory.store._models import MessageRow, SummaryRow, utcnow
from timemory.store._rows import aware, message_from, naive_utc


@dataclass(frozen=True)
class Summary:
    seq: int
    user_id: str
    session_id: str
    content: str
    through_seq: int  # the last message it covers
    messages: int  # how many messages of the session it covers
    reason: str
    model: str | None
    created_at: datetime
    vector: np.ndarray | None = None


def _summary(row: SummaryRow, vector: np.ndarray | None = None) -> Summary:
    return Summary(seq=row.seq, user_id=row.user_id, session_id=row.session_id, content=row.content,
                   through_seq=row.through_seq, messages=row.messages, reason=row.reason, model=row.model,
                   created_at=aware(row.created_at), vector=vector)


class SummaryRepository:
    def __init__(self, db: Database, dim: int) -> None:
        self._db = db
        self._dim = dim

    def add(self, user_id: str, session_id: str, content: str, *, through_seq: int, messages: int, reason: str,
            model: str | None, created_at: datetime | None = None) -> Summary:
        row = SummaryRow(user_id=user_id, session_id=session_id, content=content, through_seq=through_seq,
                         messages=messages, reason=reason, model=model,
                         created_at=naive_utc(created_at) or utcnow())
        with self._db.write() as s:
            s.add(row)
            s.flush()
        return _summary(row)

    def latest(self, user_id: str, session_id: str) -> Summary | None:
        with self._db.read() as s:
            row = s.scalars(select(SummaryRow).where(SummaryRow.user_id == user_id, SummaryRow.session_id == session_id)
                            .order_by(SummaryRow.seq.desc()).limit(1)).first()
        return _summary(row) if row is not None else None

    def history(self, user_id: str, session_id: str) -> builtins.list[Summary]:
        """Every version of the session's summary, oldest first."""
        with self._db.read() as s:
            rows = s.scalars(select(SummaryRow).where(SummaryRow.user_id == user_id,
                                                      SummaryRow.session_id == session_id)
                             .order_by(SummaryRow.seq)).all()
        return [_summary(r) for r in rows]

    def current(self, user_id: str) -> builtins.list[Summary]:
        """The newest summary of each of the user's sessions, with its vector where one was kept."""
        newest = (select(func.max(SummaryRow.seq)).where(SummaryRow.user_id == user_id)
                  .group_by(SummaryRow.session_id))
        with self._db.read() as s:
            rows = s.execute(select(SummaryRow, SummaryRow.embedding).where(SummaryRow.seq.in_(newest))
                             .order_by(SummaryRow.seq)).all()
        return [_summary(r[0], r[1] if r[1] is not None and len(r[1]) == self._dim else None) for r in rows]

    def save_vector(self, seq: int, vector: np.ndarray) -> None:
        with self._db.write() as s:
            s.execute(update(SummaryRow).where(SummaryRow.seq == seq).values(embedding=np.asarray(vector, np.float32)))

    def after(self, user_id: str, session_id: str, through_seq: int) -> builtins.list[tuple[int, Message]]:
        """The session's messages stored after ``through_seq``, in order, each with its seq."""
        with self._db.read() as s:
            rows = s.scalars(select(MessageRow).where(MessageRow.user_id == user_id,
                                                      MessageRow.session_id == session_id,
                                                      MessageRow.seq > through_seq)
                             .order_by(MessageRow.seq)).all()
        return [(r.seq, message_from(r)) for r in rows]
