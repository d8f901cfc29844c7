"""Rolling session summaries: each chat session gets a summary that the model updates in the background, from the
previous summary and the messages since, when enough turns have passed, when the session goes idle, and when the
topic changes.

A topic change is read from the messages' vectors: the newest user message drifts from the mean of the user's
previous few messages in the session by more than :attr:`SummaryPolicy.topic_drift` (1 − cosine). The threshold was
chosen on a labelled set of conversations (``python -m bench.topics``; docs/benchmarks.md). On a change, the messages
before the new topic are summarised, so a summary never mixes the old topic's end with the new one's start.

Summaries are stored with their history (:mod:`timemory.store._summaries`), searched as episodes, and given to the
chat for the older turns of a long session.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from timemory._prompts import SUMMARY_PREVIOUS, SUMMARY_PROMPT
from timemory._validation import check_user_id
from timemory.core._engine import Engine
from timemory.errors import LLMError
from timemory.providers._llm import LLM, Usage
from timemory.store import Summary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SummaryPolicy:
    every_messages: int = 4  # user messages since the last summary
    idle_seconds: float = 300.0
    topic_drift: float = 0.875  # the best F1 on bench/data/topics.json (docs/benchmarks.md, section 10)
    window: int = 3  # the user's previous messages the newest is compared with
    words: int = 120
    message_chars: int = 1_000  # each message is cut to this many characters in the prompt


def drift(previous: np.ndarray, new: np.ndarray) -> float:
    """How far ``new`` (a unit vector) has moved from the mean of ``previous`` (unit rows): 1 − cosine."""
    centre = previous.mean(axis=0)
    norm = float(np.linalg.norm(centre))
    return 1.0 - (float(centre @ new) / norm if norm else 0.0)


class Summaries:
    def __init__(self, engine: Engine, llm: LLM, policy: SummaryPolicy | None = None) -> None:
        self.engine = engine
        self.llm = llm
        self.policy = policy or SummaryPolicy()

    def latest(self, *, user_id: str, session_id: str) -> Summary | None:
        return self.engine.store.summaries.latest(check_user_id(user_id), session_id)

    def current(self, *, user_id: str) -> list[Summary]:
        """The current summary of each of the user's sessions that has one."""
        return self.engine.store.summaries.current(check_user_id(user_id))

    def history(self, *, user_id: str, session_id: str) -> list[Summary]:
        """Every version of the session's summary, oldest first (the last is the current one)."""
        return self.engine.store.summaries.history(check_user_id(user_id), session_id)

    def due(self, *, user_id: str, session_id: str) -> tuple[str, int] | None:
        """Why the session's summary should be updated now, and through which message; None when it need not."""
        check_user_id(user_id)
        latest = self.latest(user_id=user_id, session_id=session_id)
        pending = self.engine.store.summaries.after(user_id, session_id, latest.through_seq if latest else 0)
        said = [(seq, m) for seq, m in pending if m.role == "user"]
        if len(said) >= self.policy.every_messages:
            return "turns", pending[-1][0]
        if len(said) < 2:
            return None
        vectors = self._vectors(user_id, [seq for seq, _ in said[-self.policy.window - 1:]])
        if vectors is not None and drift(vectors[:-1], vectors[-1]) >= self.policy.topic_drift:
            before = [seq for seq, _ in pending if seq < said[-1][0]]
            return ("topic", before[-1]) if before else None
        return None

    def _vectors(self, user_id: str, seqs: list[int]) -> np.ndarray | None:
        entry = self.engine.episodes.entry(user_id, self.engine.embed_checked)
        by_seq = {s.seq: s.vector for s in entry.message_states}
        found = [by_seq.get(seq) for seq in seqs]
        if any(v is None for v in found):
            return None
        return np.vstack(found)  # type: ignore[arg-type]

    def update(self, *, user_id: str, session_id: str, reason: str, through_seq: int | None = None,
               when: datetime | None = None, usage: Usage | None = None) -> Summary | None:
        """A new version of the session's summary from the previous one and the messages since (those up to
        ``through_seq``); None when no message is new. ``when`` dates it (a replay uses the session's date)."""
        check_user_id(user_id)
        latest = self.latest(user_id=user_id, session_id=session_id)
        pending = [(seq, m) for seq, m in
                   self.engine.store.summaries.after(user_id, session_id, latest.through_seq if latest else 0)
                   if through_seq is None or seq <= through_seq]
        if not pending:
            return None
        cut = self.policy.message_chars
        prompt = SUMMARY_PROMPT.format(
            words=self.policy.words,
            previous=SUMMARY_PREVIOUS.format(summary=latest.content) if latest else "",
            messages="\n".join(f"{m.role}: {m.content[:cut]}" for _, m in pending))
        text = " ".join("".join(self.llm.stream([{"role": "user", "content": prompt}], usage=usage)).split())
        if not text:
            raise LLMError("The model returned an empty summary.")
        text = " ".join(text.split(" ")[: self.policy.words * 2])  # a rambling model is cut, not stored whole
        summary = self.engine.store.summaries.add(
            user_id, session_id, text, through_seq=pending[-1][0],
            messages=(latest.messages if latest else 0) + len(pending), reason=reason,
            model=getattr(self.llm, "model", None), created_at=when)
        self.engine.store.summaries.save_vector(summary.seq, self.engine.embed_checked([text])[0])
        return summary

    def after_turn(self, *, user_id: str, session_id: str) -> Summary | None:
        """Update the summary if enough turns passed or the topic changed (called after each chat turn)."""
        due = self.due(user_id=user_id, session_id=session_id)
        if due is None:
            return None
        return self.update(user_id=user_id, session_id=session_id, reason=due[0], through_seq=due[1])


class IdleTimers:
    """One timer per key, restarted by every :meth:`touch`: ``action(key)`` runs once the key has been quiet for
    ``seconds``."""

    def __init__(self, seconds: float, action: Callable[[str], None]) -> None:
        self.seconds, self.action = seconds, action
        self._timers: dict[str, threading.Timer] = {}
        self._lock = threading.Lock()

    def touch(self, key: str) -> None:
        with self._lock:
            old = self._timers.pop(key, None)
            if old is not None:
                old.cancel()
            timer = threading.Timer(self.seconds, self._fire, args=(key,))
            timer.daemon = True
            self._timers[key] = timer
            timer.start()

    def _fire(self, key: str) -> None:
        with self._lock:
            self._timers.pop(key, None)
        try:
            self.action(key)
        except Exception:  # noqa: BLE001 - a background summary must not take the process down
            log.exception("the idle action for %s failed", key)
