"""Model answers kept by the exact request (the lab's answer cache)."""

from __future__ import annotations

import logging

from timemory.errors import DatabaseError
from timemory.store._database import Database
from timemory.store._models import LLMCacheRow, utcnow

log = logging.getLogger(__name__)


class AnswerRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, key: str) -> str | None:
        with self._db.read() as s:
            row = s.get(LLMCacheRow, key)
            return row.response if row is not None else None

    def keep(self, key: str, model: str, response: str) -> None:
        try:
            with self._db.write() as s:
                if s.get(LLMCacheRow, key) is None:
                    s.add(LLMCacheRow(key=key, model=model[:200], response=response, created_at=utcnow()))
        except DatabaseError:
            log.info("LLM cache entry %s was written by another process", key[:12])
