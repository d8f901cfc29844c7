"""The durable job queue's rows: enqueue, claim the next job (in order per user, one running job per user),
extend a lease, finish. No row lock is needed to claim: a conditional UPDATE that only one worker can win."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from timemory.errors import LeaseLostError, NotFoundError
from timemory.schemas import Job, JobLease
from timemory.store._database import Database
from timemory.store._models import JobRow, utcnow
from timemory.store._rows import aware, new_id
from timemory.store._users import UserRepository

# How many unfinished jobs a claim looks at to find a user whose turn it is.
CLAIM_WINDOW = 200


def _matched(s: Session, statement: Any) -> int:
    """Rows a conditional UPDATE matched (the queue's way of telling which worker won)."""
    result: CursorResult[Any] = s.execute(statement)  # type: ignore[assignment]
    return int(result.rowcount)


def job_from(row: JobRow) -> Job:
    return Job(id=row.id, user_id=row.user_id, kind=row.kind, status=row.status,  # type: ignore[arg-type]
               attempts=row.attempts, max_attempts=row.max_attempts, error=row.error, run_id=row.run_id,
               created_at=aware(row.created_at), started_at=aware(row.started_at),  # type: ignore[arg-type]
               finished_at=aware(row.finished_at), payload=dict(row.payload or {}))


class JobQueue:
    def __init__(self, db: Database, users: UserRepository) -> None:
        self._db = db
        self._users = users

    def enqueue(self, user_id: str, kind: str, payload: dict[str, Any], *, max_attempts: int = 3) -> Job:
        self._users.ensure(user_id)
        row = JobRow(id=new_id(), user_id=user_id, kind=kind, payload=payload, status="pending", attempts=0,
                     max_attempts=max_attempts, created_at=utcnow())
        with self._db.write() as s:
            s.add(row)
        return job_from(row)

    def get(self, user_id: str, job_id: str) -> Job:
        with self._db.read() as s:
            row = s.scalars(select(JobRow).where(JobRow.id == job_id)).first()
            if row is None or row.user_id != user_id:
                raise NotFoundError(f"No job '{job_id}' for user '{user_id}'.")
            return job_from(row)

    def list(self, user_id: str, statuses: Sequence[str] | None = None, limit: int = 100) -> builtins.list[Job]:
        stmt = select(JobRow).where(JobRow.user_id == user_id)
        if statuses:
            stmt = stmt.where(JobRow.status.in_(list(statuses)))
        with self._db.read() as s:
            return [job_from(r) for r in s.scalars(stmt.order_by(JobRow.seq.desc()).limit(limit))]

    def claim(self, worker: str, lease_seconds: float, *, user_id: str | None = None,
                  job_id: str | None = None) -> Job | None:
        """Take the next job whose turn it is: the oldest unfinished job of its user, if it is pending or its
        holder's lease ran out. Optionally only a given user's or a given job. None when there is nothing to do."""
        now = utcnow()
        stmt = select(JobRow).where(JobRow.status.in_(("pending", "running")))
        if user_id is not None:
            stmt = stmt.where(JobRow.user_id == user_id)
        with self._db.read() as s:
            window = s.scalars(stmt.order_by(JobRow.seq).limit(CLAIM_WINDOW)).all()
        heads: dict[str, JobRow] = {}
        for row in window:
            heads.setdefault(row.user_id, row)
        for row in heads.values():
            if job_id is not None and row.id != job_id:
                continue
            if row.lease_until is not None and row.lease_until > now:
                continue  # held by a worker, or waiting before a retry: this user's turn is taken
            if self._take(row, worker, lease_seconds):
                return self.get(row.user_id, row.id)
        return None

    def _take(self, row: JobRow, worker: str, lease_seconds: float) -> bool:
        """Win the job against every other worker: only one conditional update can match what was read. The job's
        times are taken now, not when the queue was read: another worker may have finished the job before this one
        meanwhile, and a start stamped earlier than that would misstate the order jobs ran in."""
        now = utcnow()
        out_of_attempts = row.attempts >= row.max_attempts
        values: dict[str, Any] = (
            {"status": "failed", "finished_at": now, "worker": None, "lease_until": None,
             "error": (row.error or "the worker stopped") + f" (gave up after {row.attempts} attempts)"}
            if out_of_attempts else
            {"status": "running", "worker": worker, "attempts": row.attempts + 1,
             "started_at": row.started_at or now,  # a retry keeps the first start; attempts counts the tries
             "lease_until": now + timedelta(seconds=lease_seconds)})
        with self._db.write() as s:
            won = _matched(s, update(JobRow).where(
                JobRow.seq == row.seq, JobRow.status == row.status, JobRow.attempts == row.attempts,
                JobRow.worker.is_(None) if row.worker is None else JobRow.worker == row.worker,
            ).values(**values))
        return bool(won) and not out_of_attempts

    def extend_lease(self, lease: JobLease, lease_seconds: float) -> None:
        with self._db.write() as s:
            held = _matched(s, update(JobRow).where(
                JobRow.id == lease.job_id, JobRow.worker == lease.worker, JobRow.status == "running",
            ).values(lease_until=utcnow() + timedelta(seconds=lease_seconds)))
        if not held:
            raise LeaseLostError(f"Job '{lease.job_id}' is no longer held by this worker.")

    @staticmethod
    def mark_applied(s: Session, lease: JobLease, run_id: str) -> None:
        """Inside a memory write: record that the job's changes are in, or roll everything back if this worker
        no longer holds the job."""
        held = _matched(s, update(JobRow).where(
            JobRow.id == lease.job_id, JobRow.worker == lease.worker, JobRow.status == "running",
        ).values(applied_run_id=run_id))
        if not held:
            raise LeaseLostError(f"Job '{lease.job_id}' was taken over by another worker; this run's changes "
                                 "were rolled back.")

    def applied_run(self, job_id: str) -> str | None:
        with self._db.read() as s:
            return s.scalar(select(JobRow.applied_run_id).where(JobRow.id == job_id))

    def finish(self, lease: JobLease, *, status: str, run_id: str | None, error: str | None = None,
                   retry_after: float | None = None) -> bool:
        """End the job if this worker still holds it; with ``retry_after`` (seconds), hand it back to be tried
        again no sooner than that."""
        values: dict[str, Any] = {"run_id": run_id, "error": error, "worker": None}
        if retry_after is not None:
            values |= {"status": "pending", "lease_until": utcnow() + timedelta(seconds=retry_after)}
        else:
            values |= {"status": status, "finished_at": utcnow(), "lease_until": None}
        with self._db.write() as s:
            return bool(_matched(s, update(JobRow).where(
                JobRow.id == lease.job_id, JobRow.worker == lease.worker, JobRow.status == "running",
            ).values(**values)))

    def counts(self) -> dict[str, int]:
        with self._db.read() as s:
            return {status: int(n) for status, n in s.execute(
                select(JobRow.status, func.count()).group_by(JobRow.status))}
