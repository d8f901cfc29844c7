"""Users: created on first use and listed with their counts (erasing one is in ``erasure.py``)."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from timemory._validation import check_user_id
from timemory.errors import DatabaseError
from timemory.schemas import UserStats
from timemory.store._database import Database
from timemory.store._models import ErasedUserRow, MemoryRow, SessionRow, UserRow, utcnow
from timemory.store._rows import aware


class UserRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def ensure(self, user_id: str, *, on_purpose: bool = False) -> None:
        """Create the user on first use. An erased user is not brought back that way (ErasedUserError); a person
        who creates it ``on_purpose`` lifts the erasure."""
        check_user_id(user_id)
        with self._db.read() as s:
            if s.get(UserRow, user_id) is not None:
                return
        try:
            with self._db.write() as s:
                if on_purpose:
                    digest = self._db.user_hash(s, user_id)
                    if digest is not None:
                        s.execute(delete(ErasedUserRow).where(ErasedUserRow.id_hash == digest))
                else:
                    self._db.refuse_erased(s, user_id)
                if s.get(UserRow, user_id) is None:
                    s.add(UserRow(id=user_id, created_at=utcnow(), memory_version=0))
        except DatabaseError:
            with self._db.read() as s:  # another writer created it first
                if s.get(UserRow, user_id) is None:
                    raise

    def erased(self, user_id: str) -> bool:
        with self._db.read() as s:
            digest = self._db.user_hash(s, user_id)
            return digest is not None and s.get(ErasedUserRow, digest) is not None

    def version(self, user_id: str) -> int:
        """A number that moves on every change to the user's memories."""
        with self._db.read() as s:
            return self._db.version(s, user_id)

    def list(self) -> list[UserStats]:
        with self._db.read() as s:
            users = s.scalars(select(UserRow).order_by(UserRow.id)).all()
            sessions = dict(
                s.execute(select(SessionRow.user_id, func.count()).group_by(SessionRow.user_id)).all()
            )
            counts: dict[tuple[str, str], int] = {
                (u, st): n
                for u, st, n in s.execute(
                    select(MemoryRow.user_id, MemoryRow.status, func.count()).group_by(
                        MemoryRow.user_id, MemoryRow.status
                    )
                )
            }
        return [
            UserStats(
                id=u.id,
                created_at=aware(u.created_at),  # type: ignore[arg-type]
                sessions=sessions.get(u.id, 0),
                memories_active=counts.get((u.id, "active"), 0),
                memories_outdated=counts.get((u.id, "outdated"), 0),
            )
            for u in users
        ]

