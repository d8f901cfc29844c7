"""What an episode search reads of a user's messages, and the message vectors it writes.

Every stored message is an episode. Its vector is computed the first time a search meets it and kept in
``messages.embedding``, so each message is embedded once whatever path stored it (chat, process, import, replay).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import bindparam, func, select, update

from timemory.store._database import Database
from timemory.store._models import MemoryRow, MessageRow, SummaryRow
from timemory.store._rows import aware


@dataclass(frozen=True)
class EpisodeState:
    """One message as the episode index holds it (``vector`` is None until it is embedded)."""

    seq: int
    message_id: str
    session_id: str | None
    role: str
    content: str
    created_at: datetime
    vector: np.ndarray | None
    name: str | None = None  # the speaker's name, when the message carries one


@dataclass(frozen=True)
class Learnt:
    """What an episode's key holds of a memory learnt from it."""

    memory_id: str
    source_message_ids: tuple[str, ...]
    content: str
    type: str
    status: str
    vector: np.ndarray


_EPISODE_COLUMNS = (MessageRow.seq, MessageRow.message_id, MessageRow.session_id, MessageRow.role,
                    MessageRow.content, MessageRow.created_at, MessageRow.embedding, MessageRow.name)


class EpisodeRepository:
    def __init__(self, db: Database, dim: int) -> None:
        self._db = db
        self._dim = dim

    def mark(self, user_id: str) -> tuple[int, int, int, int]:
        """(memory version, message count, last message seq, last summary seq): an episode index is current while
        these hold."""
        with self._db.read() as s:
            count, last = s.execute(select(func.count(), func.max(MessageRow.seq))
                                    .where(MessageRow.user_id == user_id)).one()
            summary = s.scalar(select(func.max(SummaryRow.seq)).where(SummaryRow.user_id == user_id))
            return self._db.version(s, user_id), int(count or 0), int(last or 0), int(summary or 0)

    def states(self, user_id: str, after_seq: int = 0) -> builtins.list[EpisodeState]:
        """The user's messages after ``after_seq``, in the order they were stored."""
        with self._db.read() as s:
            rows = s.execute(select(*_EPISODE_COLUMNS)
                             .where(MessageRow.user_id == user_id, MessageRow.seq > after_seq)
                             .order_by(MessageRow.seq)).all()
        return [EpisodeState(seq=r[0], message_id=r[1], session_id=r[2], role=r[3], content=r[4],
                             created_at=aware(r[5]), vector=_usable(r[6], self._dim), name=r[7]) for r in rows]

    def learnt(self, user_id: str) -> builtins.list[Learnt]:
        """Every memory of the user that names source messages, with its vector (the keys episodes are found by)."""
        with self._db.read() as s:
            rows = s.execute(select(MemoryRow.id, MemoryRow.source_message_ids, MemoryRow.content, MemoryRow.type,
                                    MemoryRow.status, MemoryRow.embedding)
                             .where(MemoryRow.user_id == user_id)
                             .order_by(MemoryRow.created_at, MemoryRow.id)).all()
        return [Learnt(memory_id=r[0], source_message_ids=tuple(r[1]), content=r[2], type=r[3], status=r[4],
                       vector=r[5]) for r in rows if r[1]]

    def save_vectors(self, user_id: str, vectors: dict[int, np.ndarray]) -> None:
        """Keep the vectors of these messages (by seq); a message deleted meanwhile is skipped."""
        if not vectors:
            return
        stmt = (update(MessageRow).where(MessageRow.user_id == bindparam("uid"), MessageRow.seq == bindparam("s"))
                .values(embedding=bindparam("v")))
        with self._db.write() as s:
            s.connection().execute(stmt, [{"uid": user_id, "s": seq, "v": np.asarray(v, np.float32)}
                                          for seq, v in vectors.items()])

    def forget_vectors(self) -> None:
        """Drop every message vector (after the embedding model changed they are computed again)."""
        with self._db.write() as s:
            s.execute(update(MessageRow).values(embedding=None))


def _usable(vector: np.ndarray | None, dim: int) -> np.ndarray | None:
    """A stored vector of this database's width, or None (never embedded, or by another model)."""
    return vector if vector is not None and len(vector) == dim else None
