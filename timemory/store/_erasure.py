"""Erasure: what a user said, and what was learnt from it, removed from every table rather than hidden.

Deleting a memory by hand keeps its history (a DELETE event with the old text); erasing keeps nothing. A user's
erasure removes their memories, events, sessions, messages, session summaries, pipeline runs, jobs and API keys,
the model answers their runs stored in the answer cache, and their questions in the lab's experiments. A memory's
erasure removes it with its events and takes its text out of the traces, the cached answers and the experiments
that hold it. SQLite then checkpoints its write-ahead log and rewrites the file (``VACUUM``), so the text is not
left in free pages.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from timemory.errors import NotFoundError
from timemory.store._database import Database
from timemory.store._models import (
    ApiKeyRow,
    ErasedUserRow,
    ExperimentRow,
    JobRow,
    LLMCacheRow,
    MemoryEventRow,
    MemoryRow,
    MessageRow,
    PipelineRunRow,
    SessionRow,
    SummaryRow,
    UserRow,
)

ERASED = "[erased]"
USER_TABLES = (MemoryRow, MemoryEventRow, MessageRow, SummaryRow, SessionRow, PipelineRunRow, JobRow, ApiKeyRow)


class Erasure:
    def __init__(self, db: Database) -> None:
        self._db = db

    def user(self, user_id: str) -> dict[str, int]:
        """Erase every row of the user (their keys stop working at once, their queued jobs are gone); returns how
        many rows each table lost."""
        self._db.make_erasure_key()
        with self._db.write(user_id) as s:
            answers = _answer_keys(s.scalars(select(PipelineRunRow.trace).where(PipelineRunRow.user_id == user_id)))
            counts = {model.__tablename__: int(s.execute(  # type: ignore[attr-defined]
                delete(model).where(model.user_id == user_id)).rowcount or 0)  # type: ignore[attr-defined]
                for model in USER_TABLES}
            counts["llm_cache"] = _forget_answers(s, answers)
            counts["experiments"] = _rewrite_questions(s, user_id, lambda questions: [
                q for q in questions if not any(r.get("user_id") == user_id for r in q.get("retrieved", []))])
            s.execute(delete(UserRow).where(UserRow.id == user_id))
            digest = self._db.user_hash(s, user_id)
            assert digest is not None  # the key was made above
            if s.get(ErasedUserRow, digest) is None:
                s.add(ErasedUserRow(id_hash=digest))  # from now on, nothing brings the user back by accident
        compact(self._db)
        return counts

    def memory(self, user_id: str, memory_id: str) -> None:
        """Erase one memory of the user and its history, and take its texts out of traces, cached answers and
        experiments. Memories it replaced or that replaced it stay, without the link."""
        with self._db.write(user_id) as s:
            row = s.get(MemoryRow, (user_id, memory_id))
            if row is None:
                raise NotFoundError(f"No memory '{memory_id}' for user '{user_id}'.")
            events = s.scalars(select(MemoryEventRow).where(MemoryEventRow.user_id == user_id,
                                                            MemoryEventRow.memory_id == memory_id)).all()
            texts = {row.content} | {t for e in events for t in (e.old_content, e.new_content) if t}
            s.execute(delete(MemoryEventRow).where(MemoryEventRow.user_id == user_id,
                                                   MemoryEventRow.memory_id == memory_id))
            s.execute(delete(MemoryRow).where(MemoryRow.user_id == user_id, MemoryRow.id == memory_id))
            s.execute(update(MemoryRow).where(MemoryRow.user_id == user_id, MemoryRow.superseded_by == memory_id)
                      .values(superseded_by=None))
            s.execute(update(MemoryEventRow).where(MemoryEventRow.user_id == user_id,
                                                   MemoryEventRow.related_memory_id == memory_id)
                      .values(related_memory_id=None))
            touched = []
            for run in s.scalars(select(PipelineRunRow).where(PipelineRunRow.user_id == user_id)):
                redacted = _redact(run.trace, memory_id, texts)
                if redacted != run.trace:
                    touched.append(run.trace)
                    run.trace = redacted
            _forget_answers(s, _answer_keys(touched))
            _rewrite_questions(s, user_id, lambda questions: _redact(questions, memory_id, texts))
        compact(self._db)


def _answer_keys(traces: Iterable[dict[str, Any]]) -> set[str]:
    return {k for trace in traces for k in (trace or {}).get("answer_keys", [])}


def _forget_answers(s: Session, keys: set[str]) -> int:
    removed = 0
    ordered = builtins.list(keys)
    for start in range(0, len(ordered), 500):
        result = s.execute(delete(LLMCacheRow).where(LLMCacheRow.key.in_(ordered[start:start + 500])))
        removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return removed


def _redact(value: Any, memory_id: str, texts: set[str]) -> Any:
    """``value`` without the entries about ``memory_id`` and with every string holding one of ``texts`` erased."""
    if isinstance(value, dict):
        return {k: _redact(v, memory_id, texts) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, memory_id, texts) for v in value
                if not (isinstance(v, dict) and memory_id in (v.get("memory_id"), v.get("related_memory_id")))]
    if isinstance(value, str) and (value == memory_id or any(t in value for t in texts)):
        return ERASED
    return value


def _rewrite_questions(s: Session, user_id: str, rewrite: Callable[[list[Any]], list[Any]]) -> int:
    """``rewrite`` the per-question results of the experiments whose users include this one; returns how many
    experiments changed."""
    changed = 0
    for row in s.scalars(select(ExperimentRow)):
        if not user_id.startswith(row.user_prefix or "\0"):
            continue
        metrics = json.loads(json.dumps(row.metrics or {}))
        questions = metrics.get("questions", [])
        kept = rewrite(questions)
        if kept != questions:
            metrics["questions"] = kept
            row.metrics = metrics
            changed += 1
    return changed


def compact(db: Database) -> None:
    """SQLite keeps deleted rows in free pages and the write-ahead log: fold the log in and rewrite the file."""
    if db.backend != "sqlite":
        return
    raw = db.engine.raw_connection()  # outside any transaction: the driver runs in autocommit (see engine.py)
    try:
        for statement in ("PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"):
            raw.driver_connection.execute(statement)  # type: ignore[union-attr]
    finally:
        raw.close()
