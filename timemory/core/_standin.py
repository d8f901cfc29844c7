"""A stand-in worker for a process where nobody drains the queue (a script that only chats): it runs the jobs of the
users someone here waits for, while they wait, and ends when nobody waits. It takes no other user's jobs, so it never
competes with the workers of other processes for work nobody here asked for."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from timemory.core._engine import Engine
from timemory.core._jobs import JobEvents, Worker


class StandInWorker:
    def __init__(self, engine: Engine, events: JobEvents, *, poll_seconds: float = 0.5) -> None:
        self._worker = Worker(engine, events=events, retry_seconds=1.0, poll_seconds=poll_seconds)
        self._events = events
        self._lock = threading.Lock()
        self._waiting: Counter[str] = Counter()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    @contextmanager
    def waiting_for(self, user_id: str) -> Iterator[None]:
        """While the block runs, the user's jobs are run here unless a worker of this process drains the queue."""
        with self._lock:
            self._waiting[user_id] += 1
            if not self._events.draining and self._thread is None:
                self._thread = threading.Thread(target=self._drain, daemon=True, name="queue-stand-in")
                self._thread.start()
        self._wake.set()
        try:
            yield
        finally:
            with self._lock:
                self._waiting[user_id] -= 1
                if self._waiting[user_id] <= 0:
                    del self._waiting[user_id]

    def _drain(self) -> None:
        stop = self._events.on_queued(self._wake.set, drains_all=False)
        try:
            while True:
                with self._lock:
                    users = list(self._waiting)
                    if not users or self._events.draining:
                        self._thread = None  # decided under the lock: a new waiter starts a new thread
                        return
                ran = [self._worker.run_once(user_id=u) for u in users]
                if not any(ran):  # nothing to run now (held elsewhere, or waiting to be retried)
                    self._wake.wait(self._worker.poll_seconds)
                    self._wake.clear()
        finally:
            stop()
