"""Saved pipeline runs: each run's whole trace, by user and session."""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from timemory.errors import NotFoundError, TiMemoryError
from timemory.schemas import PipelineResult
from timemory.store._database import Database
from timemory.store._models import PipelineRunRow, utcnow
from timemory.store._rows import naive_utc

log = logging.getLogger(__name__)


class RunRepository:
    def __init__(self, db: Database) -> None:
        self._db = db
        # told of every run this process saves, whichever part of it ran the pipeline (e.g. the API's metrics)
        self.listeners: builtins.list[Callable[[PipelineResult], None]] = []

    def save(self, result: PipelineResult) -> None:
        with self._db.write() as s:
            s.add(
                PipelineRunRow(
                    id=result.run_id, user_id=result.user_id, session_id=result.session_id, status=result.status,
                    created_at=naive_utc(result.created_at) or utcnow(), trace=result.model_dump(mode="json"),
                    kind=result.kind,
                )
            )
        for listener in self.listeners:
            try:
                listener(result)
            except Exception:  # noqa: BLE001 - an observer never fails the run it observes
                log.exception("a pipeline-run listener failed")

    def processed_messages(self, user_id: str) -> dict[str, str]:
        """Message id → ok or empty when a pipeline run read it successfully, else failed (a retried exchange's
        runs share its date, so success wins rather than the order of the runs)."""
        with self._db.read() as s:
            rows = s.execute(select(PipelineRunRow.trace).where(PipelineRunRow.user_id == user_id)).all()
        out: dict[str, str] = {}
        for (trace,) in rows:
            status = trace.get("status", "failed")
            for mid in trace.get("source_message_ids", []):
                if out.get(mid) not in ("ok", "empty"):
                    out[mid] = status
        return out

    def get(self, user_id: str, run_id: str) -> PipelineResult:
        with self._db.read() as s:
            row = s.get(PipelineRunRow, run_id)
            if row is None or row.user_id != user_id:
                raise NotFoundError(f"No pipeline run '{run_id}' for user '{user_id}'.")
            return PipelineResult.model_validate(row.trace)

    def list(self, user_id: str, limit: int = 20, session_id: str | None = None, *, until: datetime | None = None,
             offset: int = 0, oldest_first: bool = False) -> builtins.list[PipelineResult]:
        """The user's runs, newest first (or oldest first), optionally only those made at or before ``until``."""
        order = PipelineRunRow.created_at.asc() if oldest_first else PipelineRunRow.created_at.desc()
        with self._db.read() as s:
            rows = s.scalars(self._runs_query(user_id, session_id, until).order_by(order, PipelineRunRow.id)
                             .offset(max(0, offset)).limit(limit)).all()
        return [PipelineResult.model_validate(r.trace) for r in rows]

    def of_kind(self, user_id: str, kind: str, *, limit: int = 10_000) -> builtins.list[PipelineResult]:
        """The user's runs of one kind (``reflection``...), newest first."""
        with self._db.read() as s:
            rows = s.scalars(select(PipelineRunRow).where(PipelineRunRow.user_id == user_id,
                                                          PipelineRunRow.kind == kind)
                             .order_by(PipelineRunRow.created_at.desc(), PipelineRunRow.id).limit(limit)).all()
        return [PipelineResult.model_validate(r.trace) for r in rows]

    def count(self, user_id: str, *, until: datetime | None = None) -> int:
        query = self._runs_query(user_id, None, until).with_only_columns(func.count()).order_by(None)
        with self._db.read() as s:
            return int(s.scalar(query) or 0)

    @staticmethod
    def _runs_query(user_id: str, session_id: str | None, until: datetime | None) -> Select[Any]:
        stmt = select(PipelineRunRow).where(PipelineRunRow.user_id == user_id)
        if session_id is not None:
            stmt = stmt.where(PipelineRunRow.session_id == session_id)
        if until is not None:
            stmt = stmt.where(PipelineRunRow.created_at <= naive_utc(until))
        return stmt



def save_run(store: Any, result: PipelineResult) -> PipelineResult:
    """Keep a run's record; a record that cannot be saved says so in its errors instead of failing the run (its
    changes, if any, are applied already)."""
    try:
        store.runs.save(result)
    except TiMemoryError as exc:
        result.errors.append(f"the record of the run could not be saved: {exc}")
    return result
