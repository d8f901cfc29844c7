"""Chat sessions, their messages and the saved pipeline runs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session

from ..errors import DatabaseError, NotFoundError
from ..schemas import ChatSession, Experiment, Message, PipelineResult
from .db import Database
from .models import ExperimentRow, LLMCacheRow, MessageRow, PipelineRunRow, SessionRow, utcnow
from .rows import aware, message_from, naive_utc, new_id, session_from

log = logging.getLogger(__name__)


class Conversations(Database):
    @staticmethod
    def _owned_session(s: Session, user_id: str, session_id: str) -> SessionRow:
        row = s.get(SessionRow, session_id)
        if row is None or row.user_id != user_id:
            raise NotFoundError(f"No chat session '{session_id}' for user '{user_id}'.")
        return row

    def create_session(self, user_id: str, title: str = "New chat", created_at: datetime | None = None) -> ChatSession:
        self.ensure_user(user_id)
        when = naive_utc(created_at) or utcnow()
        row = SessionRow(id=new_id(), user_id=user_id, title=_clean_title(title), created_at=when, updated_at=when)
        with self._write() as s:
            s.add(row)
        return session_from(row, 0)

    def get_session(self, user_id: str, session_id: str) -> ChatSession:
        with self._read() as s:
            row = self._owned_session(s, user_id, session_id)
            n = s.scalar(select(func.count()).where(MessageRow.session_id == session_id)) or 0
        return session_from(row, int(n))

    def list_sessions(self, user_id: str) -> list[ChatSession]:
        with self._read() as s:
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
        with self._write() as s:
            row = self._owned_session(s, user_id, session_id)
            row.title = _clean_title(title)
        return self.get_session(user_id, session_id)

    def delete_session(self, user_id: str, session_id: str) -> None:
        """Delete the session and its messages; memories learnt from it stay (their provenance keeps the ids)."""
        with self._write() as s:
            row = self._owned_session(s, user_id, session_id)
            s.execute(delete(MessageRow).where(MessageRow.user_id == user_id, MessageRow.session_id == session_id))
            s.delete(row)

    def save_messages(self, user_id: str, session_id: str | None, messages: Sequence[dict[str, Any]]) -> list[Message]:
        """Store messages; a message whose id this user already has is kept as it is (re-ingest is idempotent)."""
        self.ensure_user(user_id)
        saved: list[Message] = []
        with self._write() as s:
            if session_id is not None:
                self._owned_session(s, user_id, session_id)
            ids = [str(m.get("id") or new_id()) for m in messages]
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
                        user_id=user_id, message_id=mid, session_id=session_id, role=m["role"],
                        content=m["content"], created_at=naive_utc(m.get("created_at")) or utcnow(),
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
        with self._read() as s:
            rows = s.scalars(stmt).all()
        return [message_from(r) for r in reversed(rows)]

    # ------------------------------------------------------------------ pipeline runs
    def save_run(self, result: PipelineResult) -> None:
        with self._write() as s:
            s.add(
                PipelineRunRow(
                    id=result.run_id, user_id=result.user_id, session_id=result.session_id, status=result.status,
                    created_at=naive_utc(result.created_at) or utcnow(), trace=result.model_dump(mode="json"),
                )
            )

    def find_session(self, user_id: str, title: str) -> ChatSession | None:
        """The user's oldest session with exactly this title (a replay finds its sessions again this way)."""
        with self._read() as s:
            row = s.scalars(select(SessionRow).where(SessionRow.user_id == user_id, SessionRow.title == title)
                            .order_by(SessionRow.created_at, SessionRow.id).limit(1)).first()
        return session_from(row, 0) if row is not None else None

    def processed_messages(self, user_id: str) -> dict[str, str]:
        """Message id → ok or empty when a pipeline run read it successfully, else failed (a retried exchange's
        runs share its date, so success wins rather than the order of the runs)."""
        with self._read() as s:
            rows = s.execute(select(PipelineRunRow.trace).where(PipelineRunRow.user_id == user_id)).all()
        out: dict[str, str] = {}
        for (trace,) in rows:
            status = trace.get("status", "failed")
            for mid in trace.get("source_message_ids", []):
                if out.get(mid) not in ("ok", "empty"):
                    out[mid] = status
        return out

    # ------------------------------------------------------------------ experiments
    def save_experiment(self, experiment: Experiment) -> None:
        """Insert or update the experiment with this name."""
        with self._write() as s:
            row = s.scalars(select(ExperimentRow).where(ExperimentRow.name == experiment.name)).first()
            if row is None:
                row = ExperimentRow(id=experiment.id, name=experiment.name, created_at=utcnow())
                s.add(row)
            for key in ("dataset_path", "dataset_sha256", "dataset_format", "user_prefix", "status", "config",
                        "counts", "metrics", "wall_seconds"):
                setattr(row, key, getattr(experiment, key))
            row.updated_at = utcnow()

    def get_experiment(self, name: str) -> Experiment | None:
        with self._read() as s:
            row = s.scalars(select(ExperimentRow).where(ExperimentRow.name == name)).first()
            return _experiment_from(row) if row is not None else None

    def list_experiments(self) -> list[Experiment]:
        with self._read() as s:
            return [_experiment_from(r) for r in s.scalars(select(ExperimentRow).order_by(ExperimentRow.created_at))]

    # ------------------------------------------------------------------ LLM answer cache
    def cached_answer(self, key: str) -> str | None:
        with self._read() as s:
            row = s.get(LLMCacheRow, key)
            return row.response if row is not None else None

    def keep_answer(self, key: str, model: str, response: str) -> None:
        try:
            with self._write() as s:
                if s.get(LLMCacheRow, key) is None:
                    s.add(LLMCacheRow(key=key, model=model[:200], response=response, created_at=utcnow()))
        except DatabaseError:
            log.info("LLM cache entry %s was written by another process", key[:12])

    def get_run(self, user_id: str, run_id: str) -> PipelineResult:
        with self._read() as s:
            row = s.get(PipelineRunRow, run_id)
            if row is None or row.user_id != user_id:
                raise NotFoundError(f"No pipeline run '{run_id}' for user '{user_id}'.")
            return PipelineResult.model_validate(row.trace)

    def list_runs(self, user_id: str, limit: int = 20, session_id: str | None = None, *,
                  until: datetime | None = None, offset: int = 0, oldest_first: bool = False) -> list[PipelineResult]:
        """The user's runs, newest first (or oldest first), optionally only those made at or before ``until``."""
        order = PipelineRunRow.created_at.asc() if oldest_first else PipelineRunRow.created_at.desc()
        with self._read() as s:
            rows = s.scalars(self._runs_query(user_id, session_id, until).order_by(order, PipelineRunRow.id)
                             .offset(max(0, offset)).limit(limit)).all()
        return [PipelineResult.model_validate(r.trace) for r in rows]

    def count_runs(self, user_id: str, *, until: datetime | None = None) -> int:
        query = self._runs_query(user_id, None, until).with_only_columns(func.count()).order_by(None)
        with self._read() as s:
            return int(s.scalar(query) or 0)

    @staticmethod
    def _runs_query(user_id: str, session_id: str | None, until: datetime | None) -> Select[Any]:
        stmt = select(PipelineRunRow).where(PipelineRunRow.user_id == user_id)
        if session_id is not None:
            stmt = stmt.where(PipelineRunRow.session_id == session_id)
        if until is not None:
            stmt = stmt.where(PipelineRunRow.created_at <= naive_utc(until))
        return stmt


def _experiment_from(row: ExperimentRow) -> Experiment:
    return Experiment(
        id=row.id, name=row.name, dataset_path=row.dataset_path, dataset_sha256=row.dataset_sha256,
        dataset_format=row.dataset_format, user_prefix=row.user_prefix, status=row.status,
        config=dict(row.config or {}), counts=dict(row.counts or {}), metrics=dict(row.metrics or {}),
        wall_seconds=float(row.wall_seconds or 0),
        created_at=aware(row.created_at), updated_at=aware(row.updated_at),
    )


def _clean_title(title: str) -> str:
    title = " ".join(str(title).split())[:200]
    return title or "New chat"
