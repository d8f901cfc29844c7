"""Chat with memory: sessions, a streamed reply grounded in the user's memories, then the pipeline on the exchange.

An exchange's reply streams in the caller's thread (iterate :meth:`ChatService.chat_with_memory_stream`) or in the
background (:meth:`ChatService.submit`: the session's own reply thread, exchanges of one session in the order they
were sent). Either way the message is saved at once, and the exchange is then learnt the one way every exchange is:
as a job on the durable queue, taken by a worker (this process's, or any other's), in order per user; whoever waits
for it sleeps until the worker says it is done. So an interrupted page, a second message sent before the first is
answered or a slow extraction never drops a message or holds up a reply. Readers follow an exchange's tokens as they
come.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator

from timemory._prompts import TITLE_PROMPT
from timemory._validation import check_user_id
from timemory.core._accounts import DEFAULT_TITLE, Sessions
from timemory.core._engine import Engine
from timemory.core._exchange import ChatExchange, SerialWorkers
from timemory.core._extraction import PROMPT_MESSAGE_CHARS
from timemory.core._given import GivenPolicy, approximate_tokens, given_to_reply, system_prompt
from timemory.core._jobs import Jobs
from timemory.core._standin import StandInWorker
from timemory.core._summaries import IdleTimers, Summaries, SummaryPolicy
from timemory.errors import ChatError, LLMError, TiMemoryError
from timemory.providers._llm import LLM
from timemory.schemas import Message, PipelineResult

log = logging.getLogger(__name__)

TITLE_WORDS = 6


class ChatService:
    def __init__(
        self,
        engine: Engine,
        llm: LLM,
        *,
        jobs: Jobs | None = None,
        given: GivenPolicy | None = None,
        summaries: SummaryPolicy | None = None,
        history_messages: int = 10,
        recent_turns: int = 200,
    ) -> None:
        self.engine = engine
        self.sessions = Sessions(engine.store)
        self.jobs = jobs or Jobs(engine)  # every exchange is learnt through the queue, by a worker
        self.llm = llm
        self.given = given or GivenPolicy()
        self.summaries = Summaries(engine, llm, summaries)
        self._idle = IdleTimers(self.summaries.policy.idle_seconds, self._summarise_idle)
        self.history_messages = history_messages
        self._replies = SerialWorkers("chat-reply")
        self._pipeline = SerialWorkers("chat-memory")
        # runs the exchanges waited for here when no worker of this process drains the queue (a script that chats)
        self._stand_in = StandInWorker(engine, self.jobs.events)
        self.learn_timeout = 900.0  # how long a chat waits for its exchange to be learnt
        self._turns_lock = threading.Lock()
        # Background exchanges by session (unfinished and recent), and recent exchanges by their assistant message id.
        self._open: dict[str, list[ChatExchange]] = {}
        self._recent: OrderedDict[str, ChatExchange] = OrderedDict()
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

    # ------------------------------------------------------------------ an exchange
    def _start(self, text: str, user_id: str, session_id: str | None, process: bool) -> ChatExchange:
        """Check the text, create the session on the first message and save the message before anything else."""
        text = self.engine.check_content(text, "message")
        sessions = self.sessions
        session = sessions.get(session_id, user_id=user_id) if session_id else sessions.create(user_id=user_id)
        saved = sessions.add_messages([{"role": "user", "content": text}], user_id=user_id, session_id=session.id)[0]
        exchange = ChatExchange(self, user_id, session, saved, process)
        if len(text) > PROMPT_MESSAGE_CHARS:
            exchange.notes.append(f"Your message is {len(text):,} characters; it was saved whole, but memory "
                                  f"extraction reads its first {PROMPT_MESSAGE_CHARS:,}.")
        return exchange

    def chat_with_memory_stream(
        self, text: str, *, user_id: str, session_id: str | None = None, process: bool = True
    ) -> ChatExchange:
        """Start an exchange in the caller's thread: the message is saved now; iterate the result for tokens.

        With ``process=False`` the caller runs :meth:`process_exchange` itself.
        """
        return self._start(text, user_id, session_id, process)

    def submit(self, text: str, *, user_id: str, session_id: str | None = None) -> ChatExchange:
        """Save the message now and answer it, then learn from the exchange, in background threads.

        Returns at once; :meth:`ChatExchange.follow` streams the reply. Turns of one session are answered in the order
        they were sent, each with the earlier exchanges as history.
        """
        exchange = self._start(text, user_id, session_id, process=True)
        exchange.background = True
        with self._turns_lock:
            self._open.setdefault(exchange.session_id, []).append(exchange)
        self._replies.submit(exchange.session_id, lambda: self._reply_in_background(exchange))
        return exchange

    def pending(self, session_id: str) -> list[ChatExchange]:
        """Background exchanges of the session that are not finished, oldest first."""
        with self._turns_lock:
            exchanges = self._open.get(session_id, [])
            self._open[session_id] = [t for t in exchanges if not t.finished]
            return list(self._open[session_id])

    def unfinished(self, *, user_id: str) -> int:
        """How many of the user's background exchanges in this process are still being answered or learnt from."""
        with self._turns_lock:  # finished exchanges are dropped here too, so the count stays cheap
            self._open = {sid: left for sid, exchanges in self._open.items()
                          if (left := [t for t in exchanges if not t.finished])}
            return sum(t.user_id == user_id for exchanges in self._open.values() for t in exchanges)

    def recent_exchange(self, assistant_message_id: str) -> ChatExchange | None:
        """An exchange of this process by its reply's message id (what memories that reply was given)."""
        with self._turns_lock:
            return self._recent.get(assistant_message_id)

    def _reply_in_background(self, exchange: ChatExchange) -> None:
        try:
            for _ in self._run_exchange(exchange):
                pass
        except TiMemoryError as exc:
            exchange._set("failed", reply_finished=True, error=str(exc))
            return
        except Exception as exc:  # never leave a reader waiting on an exchange that died
            log.exception("chat exchange failed")
            exchange._set("failed", reply_finished=True, error=f"The reply failed: {type(exc).__name__}")
            return
        if exchange.process:
            exchange._set("processing")
            self._pipeline.submit(exchange.user_id, lambda: self._process_in_background(exchange))
        else:
            exchange._set("done")

    def _process_in_background(self, exchange: ChatExchange) -> None:
        """Learn from the exchange through the queue and note the outcome. If the process dies first, the job is
        still there for any worker."""
        try:
            self._learn(exchange)
        except Exception as exc:
            log.exception("memory pipeline failed for a chat exchange")
            exchange._set("failed", error=f"Memory update failed: {exc}")

    def _learn(self, exchange: ChatExchange) -> PipelineResult | None:
        """Queue the exchange's stored messages and sleep until a worker has learnt from them (the same job whoever
        runs it: this process's worker, or another's)."""
        with self._stand_in.waiting_for(exchange.user_id):
            job = self.jobs.enqueue_stored(self._exchange(exchange), user_id=exchange.user_id,
                                           session_id=exchange.session_id)
            exchange.job_id = job.id
            job = self.jobs.wait(job.id, user_id=exchange.user_id, timeout=self.learn_timeout)
        exchange.pipeline = self.jobs.result(job)
        self._summarise(exchange)
        if job.status == "done":
            exchange._set("done")
        elif job.status == "failed":
            exchange._set("failed", error=f"Memory update failed: {job.error}")
        else:
            exchange._set("failed", error=f"Memory update is still {job.status} (job {job.id}); a worker will "
                                          "learn from it later.")
        return exchange.pipeline

    def _history(self, exchange: ChatExchange) -> list[Message]:
        """Earlier messages of the session: this exchange's message and messages sent after it are not history yet."""
        assert exchange.user_message is not None
        recent = self.sessions.messages(exchange.session_id, user_id=exchange.user_id, limit=self.history_messages + 20)
        ids = [m.id for m in recent]
        mine = ids.index(exchange.user_message.id) if exchange.user_message.id in ids else len(recent)
        # After this exchange's message come only later messages and the replies to earlier exchanges (in order).
        kept = [m for i, m in enumerate(recent) if (i < mine or m.role == "assistant") and i != mine]
        return kept[-self.history_messages:] if self.history_messages else []

    def _run_exchange(self, exchange: ChatExchange) -> Iterator[str]:
        exchange._set("replying")
        history = self._history(exchange)
        first_exchange = not history
        try:
            assert exchange.user_message is not None
            exchange.given = given_to_reply(self.engine, self.given, exchange.user_message, user_id=exchange.user_id,
                                                skip_messages=[m.id for m in history])
        except TiMemoryError as exc:
            log.warning("memory search failed; answering without memories: %s", exc)
        # the older exchanges of a long session reach the reply as its summary
        summary = (self.summaries.latest(user_id=exchange.user_id, session_id=exchange.session_id)
                   if len(history) >= self.history_messages > 0 else None)
        system = system_prompt(exchange.given, summary.content if summary else None, self.engine.today())
        exchange.given_tokens = approximate_tokens(system)
        prompt = [
            {"role": "system", "content": system},
            *({"role": m.role, "content": m.content} for m in history),
            {"role": "user", "content": exchange.text},
        ]
        parts: list[str] = []
        try:
            for token in self.llm.stream(prompt, usage=exchange.usage):
                parts.append(token)
                exchange._push(token)
                yield token
        except LLMError as exc:
            raise ChatError(f"The reply failed: {exc}. Your message was saved.") from exc
        exchange.reply = "".join(parts).strip() or "…"
        exchange.assistant_message = self.sessions.add_messages(
            [{"role": "assistant", "content": exchange.reply}], user_id=exchange.user_id,
            session_id=exchange.session_id)[0]
        with self._turns_lock:
            self._recent[exchange.assistant_message.id] = exchange
            while len(self._recent) > self._recent_max:
                self._recent.popitem(last=False)
        exchange._set("replying", reply_finished=True)
        if first_exchange and exchange.session.title == DEFAULT_TITLE:
            exchange.title = self._title(exchange)
        if exchange.process and not exchange.background:
            self._learn(exchange)
        elif not exchange.background:
            exchange._set("done")

    def _summarise(self, exchange: ChatExchange) -> None:
        """After an exchange is learnt: update the session's summary if it is due, and restart its idle timer."""
        try:
            exchange.summary = self.summaries.after_turn(user_id=exchange.user_id, session_id=exchange.session_id)
        except TiMemoryError as exc:
            log.warning("the session summary was not updated: %s", exc)
        self._idle.touch(f"{exchange.user_id}\n{exchange.session_id}")

    def _summarise_idle(self, key: str) -> None:
        user_id, session_id = key.split("\n", 1)
        try:
            self.summaries.update(user_id=user_id, session_id=session_id, reason="idle")
        except TiMemoryError as exc:  # a session deleted meanwhile, a model that is down
            log.info("no idle summary for session %s: %s", session_id, exc)

    @staticmethod
    def _exchange(exchange: ChatExchange) -> list[Message]:
        """The exchange's two stored messages (their ids are the memories' provenance)."""
        if exchange.user_message is None or exchange.assistant_message is None:
            raise ChatError("The exchange has not finished streaming yet.")
        return [exchange.user_message, exchange.assistant_message]

    def process_exchange(self, exchange: ChatExchange) -> PipelineResult | None:
        """Learn from the exchange now (for ``process=False`` exchanges): queued like every exchange, and waited
        for; the run's record, or None if the job did not get that far."""
        return self._learn(exchange)

    def _title(self, exchange: ChatExchange) -> str:
        """A few words from the model as plain text (small models produce that reliably, unlike JSON);
        the first words of the message when the model gives nothing usable."""
        fallback = " ".join(exchange.text.split()[:TITLE_WORDS])[:60] or DEFAULT_TITLE
        prompt = [{"role": "user",
                   "content": TITLE_PROMPT.format(user=exchange.text[:500], assistant=exchange.reply[:500])}]
        try:
            raw = "".join(self.llm.stream(prompt, usage=exchange.usage))
        except TiMemoryError as exc:
            log.info("title generation failed (%s); using the first words", exc)
            raw = ""
        title = clean_title(raw) or fallback
        try:
            exchange.session = self.sessions.rename(exchange.session_id, user_id=exchange.user_id, title=title)
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

