"""One chat exchange as it happens (its reply's tokens, its state, what it was given) and the per-key serial threads
that run exchanges in order."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Literal

from timemory.errors import ChatError
from timemory.providers._llm import Usage
from timemory.schemas import ChatSession, Message, PipelineResult, SearchHit
from timemory.store import Summary

if TYPE_CHECKING:
    from timemory.core._chat import ChatService

log = logging.getLogger(__name__)

ExchangeState = Literal["queued", "replying", "processing", "done", "failed"]


class ChatExchange:
    """One exchange. Iterating it yields the reply's tokens; afterwards its fields say what happened.

    An exchange run by :meth:`ChatService.submit` can be iterated by any number of readers, each from the first token.
    """

    def __init__(self, service: ChatService, user_id: str, session: ChatSession, user_message: Message,
                 process: bool) -> None:
        self._service = service
        self.user_id = user_id
        self.session = session
        self.user_message: Message | None = user_message
        self.text = user_message.content
        self.process = process
        self.given: list[SearchHit] = []
        self.reply = ""
        self.assistant_message: Message | None = None
        self.pipeline: PipelineResult | None = None
        self.title: str | None = None
        self.usage = Usage()
        self.state: ExchangeState = "queued"
        self.error: str | None = None
        self.notes: list[str] = []
        self.summary: Summary | None = None  # the session summary this exchange brought up to date, if any
        self.given_tokens = 0  # about how many tokens the system prompt took (memories, earlier messages, summary)
        self.background = False
        self.job_id: str | None = None
        self._tokens: list[str] = []
        self._reply_finished = False
        self._changed = threading.Condition()
        self._listeners: list[Callable[[], object]] = []
        self._started = False

    @property
    def session_id(self) -> str:
        return self.session.id

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    def __iter__(self) -> Iterator[str]:
        if self.background:
            return self.follow()
        if self._started:
            raise ChatError("A chat exchange can be streamed once.")
        self._started = True
        return self._service._run_exchange(self)

    def follow(self, timeout: float | None = None) -> Iterator[str]:
        """The reply's tokens from the first, waiting for new ones until the reply is complete (or failed)."""
        seen = 0
        while True:
            with self._changed:
                while seen == len(self._tokens) and not self._reply_finished:
                    if not self._changed.wait(timeout):
                        return
                new, finished = self._tokens[seen:], self._reply_finished
            seen += len(new)
            yield from new
            if finished and seen == len(self._tokens):
                return

    def tokens_since(self, seen: int) -> tuple[list[str], bool]:
        """The tokens after the first ``seen``, and whether the reply is complete; never waits (for readers that
        poll from an event loop)."""
        with self._changed:
            return self._tokens[seen:], self._reply_finished

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the exchange is finished (reply and memory); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.finished, timeout)

    def listen(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call ``callback`` (from the thread that runs the exchange) after each new token and change of state, so
        an event loop can follow without polling; returns what stops it."""
        with self._changed:
            self._listeners.append(callback)

        def stop() -> None:
            with self._changed:
                if callback in self._listeners:
                    self._listeners.remove(callback)
        return stop

    def _notify(self) -> None:
        self._changed.notify_all()
        for callback in list(self._listeners):
            callback()

    # -- updates from the thread that runs the exchange ------------------------------------------------------------
    def _push(self, token: str) -> None:
        with self._changed:
            self._tokens.append(token)
            self._notify()

    def _set(self, state: ExchangeState, *, reply_finished: bool = False, error: str | None = None) -> None:
        with self._changed:
            self.state = state
            self._reply_finished = self._reply_finished or reply_finished
            if error is not None:
                self.error = error
            self._notify()


class SerialWorkers:
    """One daemon thread per key running that key's jobs in submission order; the thread ends when its queue is
    empty and starts again with the next job."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Callable[[], None]]] = {}

    def submit(self, key: str, job: Callable[[], None]) -> None:
        with self._lock:
            queue = self._queues.get(key)
            if queue is not None:
                queue.append(job)
                return
            self._queues[key] = deque([job])
        threading.Thread(target=self._drain, args=(key,), daemon=True, name=f"{self.name}-{key[:12]}").start()

    def _drain(self, key: str) -> None:
        while True:
            with self._lock:
                queue = self._queues[key]
                if not queue:
                    del self._queues[key]
                    return
                job = queue[0]
            try:
                job()
            except Exception:  # a job reports its own failures; this keeps the queue going whatever happens
                log.exception("%s job failed", self.name)
            finally:
                with self._lock:
                    queue.popleft()
