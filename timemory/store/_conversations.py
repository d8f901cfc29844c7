"""Chat sessions and their messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from timemory.errors import NotFoundError
from timemory.schemas import ChatSession, Message, NewMessage
from timemory.store._database import Database
from timemory.store._models import MessageRow, SessionRow, SummaryRow, utcnow
from timemory.store._rows import message_from, naive_utc, new_id, session_from
from timemory.store._users import UserRepository


class ConversationRepository:
    """Chat sessions and their messages."""

    def __init__(self, db: Database, users: UserRepository) -> None:
        self._db = db
        self._users = users

    @staticmethod
    def _owned_session(s: Session, user_id: str, session_id: str) -> SessionRow:
        row = s.get(SessionRow, session_id)
        if row is None or row.user_id != user_id:
            raise NotFoundError(f"No chat session '{session_id}' for user '{user_id}'.")
        return row

    def create_session(self, user_id: str, title: str = "New chat", created_at: datetime | None = None) -> ChatSession:
        self._users.ensure(user_id)
        when = naive_utc(created_at) or utcnow()
        row = SessionRow(id=new_id(), user_id=user_id, title=_clean_title(title), created_at=when, updated_at=when)
        with self._db.write() as s:
            s.add(row)
        return session_from(row, 0)

    def get_session(self, user_id: str, session_id: str) -> ChatSession:
        with self._db.read() as s:
            row = self._owned_session(s, user_id, session_id)
            n = s.scalar(select(func.count()).where(MessageRow.session_id == session_id)) or 0
        return session_from(row, int(n))

    def list_sessions(self, user_id: str) -> list[ChatSession]:
        with self._db.read() as s:
            rows = s.scalars(
                select(SessionRow).where(SessionRow.user_id == user_id).order_by(SessionRow.updated_at.desc())
            ).all()
            counts = dict(
                s.execute(
                    select(MessageRow.session_id, func.count())
                    .where(MessageRow.user_id == user_id)
                    .group_by(MessageRow.session_id)
                ).all()
            )
        return [session_from(r, int(counts.get(r.id, 0))) for r in rows]

    def rename_session(self, user_id: str, session_id: str, title: str) -> ChatSession:
        with self._db.write() as s:
            row = self._owned_session(s, user_id, session_id)
            row.title = _clean_title(title)
        return self.get_session(user_id, session_id)

    def delete_session(self, user_id: str, session_id: str) -> None:
        """Delete the session, its messages and its summaries; memories learnt from it stay (their provenance keeps
        the ids)."""
        with self._db.write() as s:
            row = self._owned_session(s, user_id, session_id)
            s.execute(delete(MessageRow).where(MessageRow.user_id == user_id, MessageRow.session_id == session_id))
            s.execute(delete(SummaryRow).where(SummaryRow.user_id == user_id, SummaryRow.session_id == session_id))
            s.delete(row)

    def save_messages(self, user_id: str, session_id: str | None, messages: Sequence[NewMessage]) -> list[Message]:
        """Store messages; a message whose id this user already has is kept as it is (re-ingest is idempotent)."""
        self._users.ensure(user_id)
        saved: list[Message] = []
        with self._db.write() as s:
            if session_id is not None:
                self._owned_session(s, user_id, session_id)
            ids = [m.id or new_id() for m in messages]
            known = {
                r.message_id: r
                for r in s.scalars(
                    select(MessageRow).where(MessageRow.user_id == user_id, MessageRow.message_id.in_(ids))
                )
            }
            for mid, m in zip(ids, messages, strict=True):
                row = known.get(mid)
                if row is None:
                    row = known[mid] = MessageRow(
                        user_id=user_id, message_id=mid, session_id=session_id, role=m.role,
                        content=m.content, created_at=naive_utc(m.created_at) or utcnow(), name=m.name,
                    )
                    s.add(row)
                    s.flush()
                saved.append(message_from(row))
            if session_id is not None and messages:
                s.execute(update(SessionRow).where(SessionRow.id == session_id).values(updated_at=utcnow()))
        return saved

    def list_messages(self, user_id: str, session_id: str, limit: int | None = None) -> list[Message]:
        """The session's messages in order; with ``limit``, only the last ``limit`` (fetched newest first)."""
        stmt = (
            select(MessageRow)
            .where(MessageRow.user_id == user_id, MessageRow.session_id == session_id)
            .order_by(MessageRow.seq.desc())
            .limit(limit)
        )
        with self._db.read() as s:
            rows = s.scalars(stmt).all()
        return [message_from(r) for r in reversed(rows)]

    def find_session(self, user_id: str, title: str) -> ChatSession | None:
        """The user's oldest session with exactly this title (a replay finds its sessions again this way)."""
        with self._db.read() as s:
            row = s.scalars(select(SessionRow).where(SessionRow.user_id == user_id, SessionRow.title == title)
                            .order_by(SessionRow.created_at, SessionRow.id).limit(1)).first()
        return session_from(row, 0) if row is not None else None


def _clean_title(title: str) -> str:
    title = " ".join(str(title).split())[:200]
    return title or "New chat"
