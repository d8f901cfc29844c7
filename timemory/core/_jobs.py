"""Memory work off the reply path: a durable queue of exchanges to learn from, in the same database, and the workers
that drain it.

An exchange's messages are checked and stored when it is queued (the job carries them as stored), so a retry re-reads
exactly the same messages. A
worker claims the oldest unfinished job of a user whose turn is free (jobs of one user run one at a time, in the
order they were queued), holds it by a lease it keeps extending, and the pipeline writes the job's changes in the
same transaction that marks the job applied, so a job that is retried after a crash is never applied twice. A job
whose holder died is taken again when its lease runs out; a job that keeps failing is given up after
``max_attempts``. Workers run as threads of the dashboard and the API server, or as ``python -m timemory worker``;
:class:`JobEvents` tells the workers of a process that a job was queued and its waiters that a job finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from timemory._validation import check_user_id
from timemory.core._engine import Engine, dated
from timemory.core._reflection import ReflectionPolicy
from timemory.errors import InvalidInputError, LeaseLostError, NotFoundError, TiMemoryError
from timemory.providers._llm import resampled
from timemory.schemas import Job, JobLease, Message, NewMessage, PipelineResult

log = logging.getLogger(__name__)

PROCESS_EXCHANGE = "process_exchange"
REFLECT = "reflect"
FINISHED = ("done", "failed")


class JobEvents:
    """News of the queue within this process: a job was queued (the workers draining here look at once) and a job
    finished (whoever waits on it wakes). A waiter needs no loop of its own; a job finished by another process is
    seen at the waiter's next look at the database (every ``recheck_seconds``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, list[Callable[[], object]]] = {}
        self._workers: list[Callable[[], object]] = []
        self._others: list[Callable[[], object]] = []

    def on_queued(self, wake: Callable[[], object], *, drains_all: bool = True) -> Callable[[], None]:
        """Call ``wake`` whenever a job is queued here (``drains_all``: a worker that takes any user's jobs); returns
        what stops it."""
        with self._lock:
            (self._workers if drains_all else self._others).append(wake)

        def stop() -> None:
            with self._lock:
                for kind in (self._workers, self._others):
                    if wake in kind:
                        kind.remove(wake)
        return stop

    @property
    def draining(self) -> int:
        """How many workers of this process drain the whole queue."""
        with self._lock:
            return len(self._workers)

    def queued(self) -> None:
        with self._lock:
            workers = [*self._workers, *self._others]
        for wake in workers:
            wake()

    def on_finished(self, job_id: str, callback: Callable[[], object]) -> Callable[[], None]:
        """Call ``callback`` once the job finishes here; returns what stops it."""
        with self._lock:
            self._waiters.setdefault(job_id, []).append(callback)

        def stop() -> None:
            with self._lock:
                left = [c for c in self._waiters.get(job_id, []) if c is not callback]
                if left:
                    self._waiters[job_id] = left
                else:
                    self._waiters.pop(job_id, None)
        return stop

    def finished(self, job_id: str) -> None:
        with self._lock:
            callbacks = self._waiters.pop(job_id, [])
        for callback in callbacks:
            callback()


class Jobs:
    """The queue as the facade offers it (``tm.jobs``)."""

    def __init__(self, engine: Engine, events: JobEvents | None = None, *, recheck_seconds: float = 5.0) -> None:
        self._engine = engine
        self._queue = engine.store.jobs
        self.events = events or JobEvents()
        self.recheck_seconds = recheck_seconds

    def enqueue(self, messages: Sequence[NewMessage | dict[str, Any]], *, user_id: str,
                session_id: str | None = None, max_attempts: int = 3) -> Job:
        """Queue an exchange for the memory pipeline: the messages are checked and stored now (bad input is refused
        here, not when a worker reads it), and the job carries them as stored."""
        check_user_id(user_id)
        if session_id is not None:
            self._engine.store.conversations.get_session(user_id, session_id)  # another user's is not found
        clean = self._engine.check_messages(messages)
        saved = self._engine.save_messages(clean, user_id=user_id, session_id=session_id)
        return self.enqueue_stored(saved, user_id=user_id, session_id=session_id, dated=dated(clean),
                                   max_attempts=max_attempts)

    def enqueue_stored(self, messages: Sequence[Message], *, user_id: str, session_id: str | None,
                       dated: datetime | None = None, max_attempts: int = 3) -> Job:
        """Queue an exchange whose messages are stored already (a chat's, checked when they came in)."""
        payload = {"session_id": session_id, "dated": dated.isoformat() if dated else None,
                   "messages": [m.model_dump(mode="json") for m in messages]}
        job = self._queue.enqueue(check_user_id(user_id), PROCESS_EXCHANGE, payload, max_attempts=max_attempts)
        self.events.queued()
        return job

    def enqueue_reflection(self, *, user_id: str, since: datetime | None = None,
                           max_groups: int | None = None) -> Job:
        """Queue a reflection pass over the user's memories (see ``TiMem.reflect``)."""
        check_user_id(user_id)
        if max_groups is not None and max_groups < 1:
            raise InvalidInputError("max_groups must be at least 1.")
        payload = {"since": since.isoformat() if since else None, "max_groups": max_groups}
        job = self._queue.enqueue(user_id, REFLECT, payload, max_attempts=3)
        self.events.queued()
        return job

    def get(self, job_id: str, *, user_id: str) -> Job:
        return self._queue.get(check_user_id(user_id), job_id)

    def list(self, *, user_id: str, statuses: Sequence[str] | None = None, limit: int = 100) -> list[Job]:
        """The user's jobs, newest first."""
        return self._queue.list(check_user_id(user_id), statuses, limit)

    def counts(self) -> dict[str, int]:
        """Jobs by status, over every user (for monitoring)."""
        return self._queue.counts()

    def result(self, job: Job) -> PipelineResult | None:
        """The pipeline run of a finished job, if it got that far."""
        return self._engine.store.runs.get(job.user_id, job.run_id) if job.run_id else None

    def wait(self, job_id: str, *, user_id: str, timeout: float = 120.0) -> Job:
        """Block until the job is done or failed (or ``timeout`` seconds passed); returns its latest state. The
        thread sleeps until a worker of this process says the job finished (see :class:`JobEvents`)."""
        finished = threading.Event()
        stop = self.events.on_finished(job_id, finished.set)
        try:
            deadline = time.monotonic() + timeout
            while True:
                job = self.get(job_id, user_id=user_id)
                left = deadline - time.monotonic()
                if job.status in FINISHED or left <= 0:
                    return job
                finished.wait(min(left, self.recheck_seconds))
        finally:
            stop()

    async def wait_async(self, job_id: str, *, user_id: str, timeout: float = 120.0) -> Job:
        """:meth:`wait` for an event loop: no thread is held while the job runs."""
        loop = asyncio.get_running_loop()
        finished = asyncio.Event()
        stop = self.events.on_finished(job_id, lambda: loop.call_soon_threadsafe(finished.set))
        try:
            deadline = time.monotonic() + timeout
            while True:
                job = await asyncio.to_thread(self.get, job_id, user_id=user_id)
                left = deadline - time.monotonic()
                if job.status in FINISHED or left <= 0:
                    return job
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(finished.wait(), min(left, self.recheck_seconds))
        finally:
            stop()


class Worker:
    """Drains the queue: one job at a time, each under a lease kept alive by a heartbeat."""

    def __init__(self, engine: Engine, *, events: JobEvents | None = None, name: str | None = None,
                 lease_seconds: float = 60.0, poll_seconds: float = 0.5, retry_seconds: float = 2.0) -> None:
        self._engine = engine
        self._queue = engine.store.jobs
        self.events = events or JobEvents()
        self.id = (name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")[:64]
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.retry_seconds = retry_seconds
        self.processed = 0  # jobs this worker finished (done or failed for good), not attempts
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one job ---------------------------------------------------------------------------------------------------
    def run_once(self, *, user_id: str | None = None, job_id: str | None = None) -> Job | None:
        """Claim and run the next job whose turn it is (optionally only this user's, or only this job); None when
        there was none."""
        job = self._queue.claim(self.id, self.lease_seconds, user_id=user_id, job_id=job_id)
        if job is None:
            return None
        lease = JobLease(job_id=job.id, worker=self.id)
        beating = threading.Event()
        heart = threading.Thread(target=self._heartbeat, args=(lease, beating), daemon=True,
                                 name=f"lease-{job.id[:8]}")
        heart.start()
        try:
            self._run(job, lease)
        finally:
            beating.set()
            heart.join()
        try:
            after = self._queue.get(job.user_id, job.id)
        except NotFoundError:  # its user was erased meanwhile, the job with them
            self.events.finished(job.id)
            return job
        if after.status in FINISHED:  # a job that will be tried again is counted once, when it ends
            self.processed += 1
            self.events.finished(job.id)
        return after

    def _heartbeat(self, lease: JobLease, done: threading.Event) -> None:
        while not done.wait(self.lease_seconds / 3):
            try:
                self._queue.extend_lease(lease, self.lease_seconds)
            except LeaseLostError:  # another worker has it now; the pipeline's write will be refused
                return
            except TiMemoryError as exc:  # the database is away for a moment: the lease may still hold
                log.warning("could not extend the lease of job %s: %s", lease.job_id, exc)

    def _run(self, job: Job, lease: JobLease) -> None:
        applied = self._queue.applied_run(job.id)
        if applied:  # the changes landed before a crash; only the bookkeeping is missing
            self._queue.finish(lease, status="done", run_id=applied)
            return
        try:
            if job.kind == REFLECT:
                self._reflect(job, lease)
                return
            if job.kind != PROCESS_EXCHANGE:
                raise InvalidInputError(f"Unknown job kind '{job.kind}'.")
            engine = self._engine
            if job.attempts > 1 and engine.llm is not None:  # the same request would fail the same way again
                engine = engine.variant(llm=resampled(engine.llm, job.attempts))
            messages, when = stored_exchange(engine, job)
            result = engine.learn(messages, user_id=job.user_id, session_id=job.payload.get("session_id"),
                                  dated=when, lease=lease)
        except InvalidInputError as exc:  # retrying cannot help
            self._queue.finish(lease, status="failed", run_id=None, error=f"{exc.code}: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - anything else may be passing (a dropped connection)
            log.exception("job %s failed", job.id)
            self._failed(job, lease, None, f"{type(exc).__name__}: {exc}")
            return
        if result.status == "failed":
            self._failed(job, lease, result.run_id, "; ".join(result.errors) or "the pipeline run failed")
        else:
            self._queue.finish(lease, status="done", run_id=result.run_id)

    def _reflect(self, job: Job, lease: JobLease) -> None:
        """A reflection pass: its groups land one by one, so a retried job goes on where it stopped (what was
        reviewed is not asked again); it stops between groups once the job is no longer this worker's."""
        since = job.payload.get("since")

        def still_mine() -> bool:
            try:
                self._queue.extend_lease(lease, self.lease_seconds)
                return True
            except LeaseLostError:
                return False

        report = self._engine.reflect(user_id=job.user_id, since=datetime.fromisoformat(since) if since else None,
                                      policy=ReflectionPolicy(max_groups=job.payload.get("max_groups")),
                                      keep_going=still_mine)
        if report.stopped:
            return  # another worker holds the job now
        last = report.runs[-1] if report.runs else None
        if report.failed and report.failed == len(report.runs):
            self._failed(job, lease, last, f"all {report.failed} reflection groups failed")
        else:
            self._queue.finish(lease, status="done", run_id=last)

    def _failed(self, job: Job, lease: JobLease, run_id: str | None, error: str) -> None:
        if job.attempts < job.max_attempts:
            delay = self.retry_seconds * 2 ** (job.attempts - 1)
            self._queue.finish(lease, status="pending", run_id=run_id, error=error, retry_after=delay)
        else:
            self._queue.finish(lease, status="failed", run_id=run_id, error=error)

    # -- a draining thread -----------------------------------------------------------------------------------------
    def run_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or self._stop
        quiet = self.events.on_queued(self.wake)
        try:
            self._drain(stop)
        finally:
            quiet()

    def _drain(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                job = self.run_once()
            except TiMemoryError as exc:  # the database is away: wait and try again
                log.warning("queue worker %s: %s", self.id, exc)
                job = None
            if job is None:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def wake(self) -> None:
        """Look for work now instead of at the next poll."""
        self._wake.set()

    def start(self) -> Worker:
        """Drain the queue in a daemon thread of this process."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self.run_forever, daemon=True, name=f"queue-{self.id[-6:]}")
            self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)


def stored_exchange(engine: Engine, job: Job) -> tuple[list[Message], datetime | None]:
    """A job's messages as stored, and the time the caller dated them. Jobs queued before the messages were stored
    at the door carry them in the public form: those are checked and stored now."""
    payload = job.payload
    raw = payload.get("messages") or []
    if raw and all(isinstance(m, dict) and "user_id" in m for m in raw):
        when = payload.get("dated")
        return [Message.model_validate(m) for m in raw], datetime.fromisoformat(when) if when else None
    clean = engine.check_messages(raw)
    return engine.save_messages(clean, user_id=job.user_id, session_id=payload.get("session_id")), dated(clean)
