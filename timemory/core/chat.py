"""Chat with memory: sessions, a streamed reply grounded in the user's memories, then the pipeline on the exchange.

A turn can run in the caller's thread (iterate :meth:`ChatService.chat_with_memory_stream`) or in the background
(:meth:`ChatService.submit`): the message is saved at once, the reply is produced by the session's own worker
thread (turns of one session in the order they were sent), and the exchange is then put on the durable job queue
and learnt from in order per user (here, or by any other worker if this process stops), so an interrupted page, a
second message sent before the first is answered or a slow extraction never drops a message or holds up a reply.
Readers follow a background turn's tokens as they come.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from typing import Any, Literal

from timemory.core.accounts import DEFAULT_TITLE, Sessions
from timemory.core.engine import Engine
from timemory.core.extraction import PROMPT_MESSAGE_CHARS
from timemory.core.given import GivenPolicy, approximate_tokens, given_to_reply, system_prompt
from timemory.core.jobs import FINISHED, Jobs, Worker
from timemory.core.summaries import IdleTimers, Summaries, SummaryPolicy
from timemory.errors import ChatError, LLMError, TiMemoryError
from timemory.prompts import TITLE_PROMPT
from timemory.providers.llm import LLM, Usage
from timemory.schemas import ChatSession, Message, PipelineResult, SearchHit
from timemory.store import Summary
from timemory.validation import check_user_id

log = logging.getLogger(__name__)

TITLE_WORDS = 6
TurnState = Literal["queued", "replying", "processing", "done", "failed"]


class ChatTurn:
    """One exchange. Iterating it yields the reply's tokens; afterwards its fields say what happened.

    A turn run by :meth:`ChatService.submit` can be iterated by any number of readers, each from the first token.
    """

    def __init__(self, service: ChatService, user_id: str, session: ChatSession, user_message: Message,
                 process: bool) -> None:
        self._service = service
        self.user_id = user_id
        self.session = session
        self.user_message: Message | None = user_message
        self.text = user_message.content
        self.process = process
        self.memories_used: list[SearchHit] = []
        self.reply = ""
        self.assistant_message: Message | None = None
        self.pipeline: PipelineResult | None = None
        self.title: str | None = None
        self.usage = Usage()
        self.state: TurnState = "queued"
        self.error: str | None = None
        self.notes: list[str] = []
        self.summary: Summary | None = None  # the session summary this turn brought up to date, if any
        self.given_tokens = 0  # about how many tokens the system prompt took (memories, earlier messages, summary)
        self.background = False
        self.job_id: str | None = None
        self._tokens: list[str] = []
        self._reply_finished = False
        self._changed = threading.Condition()
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
            raise ChatError("A chat turn can be streamed once.")
        self._started = True
        return self._service._run_turn(self)

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
        """Block until the turn is finished (reply and memory); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.finished, timeout)

    # -- updates from the thread that runs the turn ------------------------------------------------------------------
    def _push(self, token: str) -> None:
        with self._changed:
            self._tokens.append(token)
            self._changed.notify_all()

    def _set(self, state: TurnState, *, reply_finished: bool = False, error: str | None = None) -> None:
        with self._changed:
            self.state = state
            self._reply_finished = self._reply_finished or reply_finished
            if error is not None:
                self.error = error
            self._changed.notify_all()


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


class ChatService:
    def __init__(
        self,
        engine: Engine,
        llm: LLM,
        *,
        given: GivenPolicy | None = None,
        summaries: SummaryPolicy | None = None,
        history_messages: int = 10,
        recent_turns: int = 200,
    ) -> None:
        self.engine = engine
        self.sessions = Sessions(engine.store)
        self.jobs = Jobs(engine)
        self.llm = llm
        self.given = given or GivenPolicy()
        self.summaries = Summaries(engine, llm, summaries)
        self._idle = IdleTimers(self.summaries.policy.idle_seconds, self._summarise_idle)
        self.history_messages = history_messages
        self._replies = SerialWorkers("chat-reply")
        self._pipeline = SerialWorkers("chat-memory")
        self._worker = Worker(engine, retry_seconds=1.0)
        self._turns_lock = threading.Lock()
        # Background turns by session (unfinished and recent), and recent turns by their assistant message id.
        self._open: dict[str, list[ChatTurn]] = {}
        self._recent: OrderedDict[str, ChatTurn] = OrderedDict()
        self._recent_max = recent_turns

    # ------------------------------------------------------------------ sessions
    def runs_by_message(self, session_id: str, *, user_id: str) -> dict[str, PipelineResult]:
        """The pipeline run each message of the session went into, by message id (older sessions included)."""
        runs = self.engine.store.runs.list(check_user_id(user_id), session_id=session_id, limit=10_000)
        out: dict[str, PipelineResult] = {}
        for run in reversed(runs):  # oldest first: a retried exchange shows its latest run
            for mid in run.source_message_ids:
                out[mid] = run
        return out

    # ------------------------------------------------------------------ a turn
    def _start(self, text: str, user_id: str, session_id: str | None, process: bool) -> ChatTurn:
        """Check the text, create the session on the first message and save the message before anything else."""
        text = self.engine.check_content(text, "message")
        sessions = self.sessions
        session = sessions.get(session_id, user_id=user_id) if session_id else sessions.create(user_id=user_id)
        saved = sessions.add_messages([{"role": "user", "content": text}], user_id=user_id, session_id=session.id)[0]
        turn = ChatTurn(self, user_id, session, saved, process)
        if len(text) > PROMPT_MESSAGE_CHARS:
            turn.notes.append(f"Your message is {len(text):,} characters; it was saved whole, but memory extraction "
                              f"reads its first {PROMPT_MESSAGE_CHARS:,}.")
        return turn

    def chat_with_memory_stream(
        self, text: str, *, user_id: str, session_id: str | None = None, process: bool = True
    ) -> ChatTurn:
        """Start a turn in the caller's thread: the message is saved now; iterate the result for tokens.

        With ``process=False`` the caller runs :meth:`process_turn` itself.
        """
        return self._start(text, user_id, session_id, process)

    def submit(self, text: str, *, user_id: str, session_id: str | None = None) -> ChatTurn:
        """Save the message now and answer it, then learn from the exchange, in background threads.

        Returns at once; :meth:`ChatTurn.follow` streams the reply. Turns of one session are answered in the order
        they were sent, each with the earlier exchanges as history.
        """
        turn = self._start(text, user_id, session_id, process=True)
        turn.background = True
        with self._turns_lock:
            self._open.setdefault(turn.session_id, []).append(turn)
        self._replies.submit(turn.session_id, lambda: self._reply_in_background(turn))
        return turn

    def pending(self, session_id: str) -> list[ChatTurn]:
        """Background turns of the session that are not finished, oldest first."""
        with self._turns_lock:
            turns = self._open.get(session_id, [])
            self._open[session_id] = [t for t in turns if not t.finished]
            return list(self._open[session_id])

    def unfinished(self, *, user_id: str) -> int:
        """How many of the user's background turns in this process are still being answered or learnt from."""
        with self._turns_lock:  # finished turns are dropped here too, so the count stays cheap
            self._open = {sid: left for sid, turns in self._open.items()
                          if (left := [t for t in turns if not t.finished])}
            return sum(t.user_id == user_id for turns in self._open.values() for t in turns)

    def recent_turn(self, assistant_message_id: str) -> ChatTurn | None:
        """A turn of this process by its reply's message id (what memories that reply was given)."""
        with self._turns_lock:
            return self._recent.get(assistant_message_id)

    def _reply_in_background(self, turn: ChatTurn) -> None:
        try:
            for _ in self._run_turn(turn):
                pass
        except TiMemoryError as exc:
            turn._set("failed", reply_finished=True, error=str(exc))
            return
        except Exception as exc:  # never leave a reader waiting on a turn that died
            log.exception("chat turn failed")
            turn._set("failed", reply_finished=True, error=f"The reply failed: {type(exc).__name__}")
            return
        if turn.process:
            turn._set("processing")
            self._pipeline.submit(turn.user_id, lambda: self._process_in_background(turn))
        else:
            turn._set("done")

    def _process_in_background(self, turn: ChatTurn) -> None:
        """Queue the exchange durably, then work through this user's queue until it is done (another worker may
        run it: then this waits). If the process dies first, the job is still there for any worker."""
        try:
            job = self.jobs.enqueue(self._exchange(turn), user_id=turn.user_id, session_id=turn.session_id)
            turn.job_id = job.id
            while job.status not in FINISHED:
                if self._worker.run_once(user_id=turn.user_id) is None:
                    time.sleep(0.1)  # held by another worker, or waiting to be retried
                job = self.jobs.get(job.id, user_id=turn.user_id)
            turn.pipeline = self.jobs.result(job)
            self._summarise(turn)
            if job.status == "done":
                turn._set("done")
            else:
                turn._set("failed", error=f"Memory update failed: {job.error}")
        except Exception as exc:
            log.exception("memory pipeline failed for a chat turn")
            turn._set("failed", error=f"Memory update failed: {exc}")

    def _history(self, turn: ChatTurn) -> list[Message]:
        """Earlier messages of the session: this turn's message and messages sent after it are not history yet."""
        assert turn.user_message is not None
        recent = self.sessions.messages(turn.session_id, user_id=turn.user_id, limit=self.history_messages + 20)
        ids = [m.id for m in recent]
        mine = ids.index(turn.user_message.id) if turn.user_message.id in ids else len(recent)
        # After this turn's message come only later messages and the replies to earlier turns (answered in order).
        kept = [m for i, m in enumerate(recent) if (i < mine or m.role == "assistant") and i != mine]
        return kept[-self.history_messages:] if self.history_messages else []

    def _run_turn(self, turn: ChatTurn) -> Iterator[str]:
        turn._set("replying")
        history = self._history(turn)
        first_exchange = not history
        try:
            assert turn.user_message is not None
            turn.memories_used = given_to_reply(self.engine, self.given, turn.user_message, user_id=turn.user_id,
                                                skip_messages=[m.id for m in history])
        except TiMemoryError as exc:
            log.warning("memory search failed; answering without memories: %s", exc)
        # the older turns of a long session reach the reply as its summary
        summary = (self.summaries.latest(user_id=turn.user_id, session_id=turn.session_id)
                   if len(history) >= self.history_messages > 0 else None)
        system = system_prompt(turn.memories_used, summary.content if summary else None)
        turn.given_tokens = approximate_tokens(system)
        prompt = [
            {"role": "system", "content": system},
            *({"role": m.role, "content": m.content} for m in history),
            {"role": "user", "content": turn.text},
        ]
        parts: list[str] = []
        try:
            for token in self.llm.stream(prompt, usage=turn.usage):
                parts.append(token)
                turn._push(token)
                yield token
        except LLMError as exc:
            raise ChatError(f"The reply failed: {exc}. Your message was saved.") from exc
        turn.reply = "".join(parts).strip() or "…"
        turn.assistant_message = self.sessions.add_messages(
            [{"role": "assistant", "content": turn.reply}], user_id=turn.user_id, session_id=turn.session_id)[0]
        with self._turns_lock:
            self._recent[turn.assistant_message.id] = turn
            while len(self._recent) > self._recent_max:
                self._recent.popitem(last=False)
        turn._set("replying", reply_finished=True)
        if first_exchange and turn.session.title == DEFAULT_TITLE:
            turn.title = self._title(turn)
        if turn.process and not turn.background:
            self.process_turn(turn)
            self._summarise(turn)
        if not turn.background:
            turn._set("done")

    def _summarise(self, turn: ChatTurn) -> None:
        """After a turn is learnt: update the session's summary if it is due, and restart its idle timer."""
        try:
            turn.summary = self.summaries.after_turn(user_id=turn.user_id, session_id=turn.session_id)
        except TiMemoryError as exc:
            log.warning("the session summary was not updated: %s", exc)
        self._idle.touch(f"{turn.user_id}\n{turn.session_id}")

    def _summarise_idle(self, key: str) -> None:
        user_id, session_id = key.split("\n", 1)
        try:
            self.summaries.update(user_id=user_id, session_id=session_id, reason="idle")
        except TiMemoryError as exc:  # a session deleted meanwhile, a model that is down
            log.info("no idle summary for session %s: %s", session_id, exc)

    @staticmethod
    def _exchange(turn: ChatTurn) -> list[dict[str, Any]]:
        """The turn's two stored messages, with their ids (provenance is kept)."""
        if turn.user_message is None or turn.assistant_message is None:
            raise ChatError("The turn has not finished streaming yet.")
        return [{"role": m.role, "content": m.content, "id": m.id}
                for m in (turn.user_message, turn.assistant_message)]

    def process_turn(self, turn: ChatTurn) -> PipelineResult:
        """Run the memory pipeline on the turn's exchange now, in this thread."""
        turn.pipeline = self.engine.process_messages(self._exchange(turn), user_id=turn.user_id,
                                                     session_id=turn.session_id)
        return turn.pipeline

    def _title(self, turn: ChatTurn) -> str:
        """A few words from the model as plain text (small models produce that reliably, unlike JSON);
        the first words of the message when the model gives nothing usable."""
        fallback = " ".join(turn.text.split()[:TITLE_WORDS])[:60] or DEFAULT_TITLE
        prompt = [{"role": "user", "content": TITLE_PROMPT.format(user=turn.text[:500], assistant=turn.reply[:500])}]
        try:
            raw = "".join(self.llm.stream(prompt, usage=turn.usage))
        except TiMemoryError as exc:
            log.info("title generation failed (%s); using the first words", exc)
            raw = ""
        title = clean_title(raw) or fallback
        try:
            turn.session = self.sessions.rename(turn.session_id, user_id=turn.user_id, title=title)
        except TiMemoryError as exc:
            log.warning("could not save the session title: %s", exc)
        return title


def clean_title(raw: str) -> str:
    """The first line of a model's answer as a title: no label, quotes or markdown, at most six words."""
    line = next((ln for ln in raw.strip().splitlines() if ln.strip()), "")
    for prefix in ("title:", "Title:", "TITLE:"):
        line = line.removeprefix(prefix)
    line = line.strip().strip("\"'`*#“”‘’ ").rstrip(".")
    return " ".join(line.split()[:TITLE_WORDS])[:60]

