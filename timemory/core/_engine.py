"""The engine: the backends (store, search, embedder, LLM) and the settings every part of the core shares, with the
checks, embedding, search and pipeline calls they all use. Chat, jobs and the facade are built on it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np

from timemory._time import as_utc, utc_now
from timemory._validation import (
    check_content,
    check_each,
    check_search_mode,
    check_search_scope,
    check_status,
    check_type,
    check_user_id,
)
from timemory.core._candidates import CandidatePolicy
from timemory.core._pipeline import Pipeline
from timemory.core._reflection import Reflection, ReflectionPolicy
from timemory.errors import EmbeddingError, InvalidInputError, LLMError
from timemory.providers._cache import CachedLLM
from timemory.providers._embeddings import Embedder
from timemory.providers._llm import LLM
from timemory.schemas import (
    JobLease,
    Message,
    NewMessage,
    PipelineResult,
    ReflectionReport,
    SearchHit,
    SearchMode,
    SearchScope,
)
from timemory.search import EpisodeEntry, EpisodeIndex, EpisodeLevers, Search
from timemory.store import Store

# Chosen on the labelled retrieval set (docs/benchmarks.md, "Search quality").
DEFAULT_SEARCH_MODE: SearchMode = "hybrid"
DEFAULT_SEARCH_SCOPE: SearchScope = "memories"
MAX_MESSAGE_ID = 128
MAX_NAME = 64  # the messages table keeps a speaker's name in 64 characters


class Engine:
    def __init__(
        self,
        store: Store,
        search: Search,
        embedder: Embedder,
        llm: LLM | None = None,
        *,
        similar_k: int = 5,
        similarity_threshold: float = 0.35,
        candidates: CandidatePolicy | None = None,
        max_content_chars: int = 32_000,
        today: Callable[[], date] | None = None,
        episodes: EpisodeIndex | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """``candidates`` says which memories consolidation is shown; without it, the default looks with
        ``similar_k`` nearest memories above ``similarity_threshold``. ``clock`` is the time now (aware, UTC) for
        every part of the engine; ``today``, when given, is the date instead of the clock's."""
        self.store = store
        self.search_index = search
        self.episodes = episodes or EpisodeIndex(store)
        self.embedder = embedder
        self.llm = llm
        self.candidates = candidates or CandidatePolicy(nearest=similar_k, threshold=similarity_threshold)
        self.max_content_chars = max_content_chars
        self.clock = clock
        self._today = today

    @property
    def similar_k(self) -> int:
        return self.candidates.nearest

    @property
    def similarity_threshold(self) -> float:
        return self.candidates.threshold

    def variant(self, *, cache_answers: bool = False, similar_k: int | None = None,
                similarity_threshold: float | None = None, candidates: CandidatePolicy | None = None,
                llm: LLM | None = None, levers: EpisodeLevers | None = None) -> Engine:
        """An engine on the same backends with other settings; ``cache_answers`` keeps every model answer in the
        database and reuses it for the same request; ``levers`` rank messages (on the same cached episodes)."""
        model = llm or self.llm
        if cache_answers and model is not None and not isinstance(model, CachedLLM):
            model = CachedLLM(model, self.store.answers)
        policy = candidates or self.candidates
        policy = dataclasses.replace(policy, nearest=policy.nearest if similar_k is None else similar_k,
                                     threshold=policy.threshold if similarity_threshold is None
                                     else similarity_threshold)
        return Engine(self.store, self.search_index, self.embedder, model, candidates=policy,
                      max_content_chars=self.max_content_chars, today=self._today,
                      episodes=self.episodes if levers is None else self.episodes.with_levers(levers),
                      clock=self.clock)

    def today(self) -> date:
        return self._today() if self._today is not None else self.clock().date()

    def now(self) -> datetime:
        """The time now by this engine's clock; with only ``today`` given, that day at the clock's time of day."""
        now = self.clock()
        return now if self._today is None else datetime.combine(self._today(), now.timetz())

    def pipeline(self) -> Pipeline:
        return Pipeline(self.store, self.search_index, self.embed_checked, self.embedder.name, self.candidates,
                        self.now)

    # ------------------------------------------------------------------ checks and vectors
    def check_content(self, content: Any, what: str = "content") -> str:
        """Stripped, non-empty text within this engine's length limit."""
        return check_content(content, self.max_content_chars, what)

    def check_messages(self, messages: Sequence[NewMessage | dict[str, Any]]) -> list[NewMessage]:
        """The door for messages: the public form (``{"role", "content", "id"?, "created_at"?}`` with an ISO or
        datetime time) checked once and made typed (content within this engine's limit, aware times, distinct ids)."""
        if not isinstance(messages, (list, tuple)) or not messages:
            raise InvalidInputError("messages must be a non-empty list of {'role', 'content'} objects.")
        clean = []
        for i, m in enumerate(messages):
            if isinstance(m, NewMessage):
                m = m.model_dump()
            if not isinstance(m, dict):
                raise InvalidInputError(f"Message {i} is not an object with 'role' and 'content'.")
            role = m.get("role")
            if role not in ("user", "assistant"):
                raise InvalidInputError(f"Message {i} has role {role!r}; use 'user' or 'assistant'.")
            content = self.check_content(m.get("content"), f"Message {i} content")
            created = m.get("created_at")
            if isinstance(created, str):
                try:
                    created = datetime.fromisoformat(created)
                except ValueError as exc:
                    raise InvalidInputError(f"Message {i} has created_at {created!r}, not an ISO time.") from exc
            if created is not None and not isinstance(created, datetime):
                raise InvalidInputError(f"Message {i} has created_at {created!r}, not an ISO time.")
            mid = m.get("id")
            if mid is not None and (not str(mid).strip() or len(str(mid)) > MAX_MESSAGE_ID):
                raise InvalidInputError(f"Message {i} has an empty or too long id (at most {MAX_MESSAGE_ID} "
                                        "characters).")
            name = m.get("name")
            if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME):
                raise InvalidInputError(f"Message {i} has name {str(name)[:80]!r}; a name is a non-empty text of at "
                                        f"most {MAX_NAME} characters.")
            clean.append(NewMessage(role=role, content=content, id=str(mid) if mid is not None else None,
                                    created_at=as_utc(created), name=name.strip() if name else None))
        ids = [m.id for m in clean if m.id is not None]
        if len(ids) != len(set(ids)):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            raise InvalidInputError(f"Two messages of one exchange have the same id ({', '.join(twice)[:200]}); "
                                    "each message needs its own.")
        return clean

    def save_messages(self, messages: Sequence[NewMessage], *, user_id: str,
                      session_id: str | None) -> list[Message]:
        """Store checked messages (a message id the user has already is kept as it is), each with an id."""
        return self.store.conversations.save_messages(user_id, session_id, messages)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for ``texts`` (checked first) from this engine's embedding model, one row each."""
        return self.embed_checked([self.check_content(t, "text") for t in texts])

    def embed_checked(self, texts: list[str]) -> np.ndarray:
        vectors = self.embedder.embed(texts)
        if vectors.shape[0] != len(texts):
            raise EmbeddingError(f"The embedder returned {vectors.shape[0]} vectors for {len(texts)} texts.")
        return vectors

    # ------------------------------------------------------------------ search and learning
    def search(
        self,
        query: str,
        *,
        user_id: str,
        limit: int = 5,
        types: Sequence[str] | None = None,
        statuses: Sequence[str] | None = ("active",),
        mode: SearchMode = DEFAULT_SEARCH_MODE,
        scope: SearchScope = DEFAULT_SEARCH_SCOPE,
    ) -> list[SearchHit]:
        """What best matches ``query`` among the user's memories (``scope="memories"``), their stored messages
        (``"episodes"``) or both (``"all"``, one list by score). ``hybrid`` fuses meaning (vector) and shared words
        (BM25), ``vector`` ranks by meaning only, ``keyword`` by shared words only (no embedding). Every hit
        carries its score parts in ``hit.scores``; with episodes in scope a memory hit carries its source
        episodes. ``types`` and ``statuses`` filter memories only."""
        check_user_id(user_id)
        query = self.check_content(query, "query")
        mode = check_search_mode(mode)
        scope = check_search_scope(scope)
        if limit <= 0:
            return []
        vec = None if mode == "keyword" else self.embed_checked([query])
        memories: list[SearchHit] = []
        if scope != "episodes":
            memories = self.search_index.find(user_id, query, vec, limit, mode=mode,
                                              types=check_each(types, check_type),
                                              statuses=check_each(statuses, check_status))
        if scope == "memories":
            return memories
        entry = self.episodes.entry(user_id, self.embed_checked)  # one entry for the episodes and their sources
        episodes = self._episodes(entry, vec, query, limit, mode)
        return merged(self.episodes.sources(entry, memories), episodes, limit)

    def recall(self, query: str, *, user_id: str, memories: int, episodes: int,
               skip_messages: Sequence[str] = ()) -> tuple[list[SearchHit], list[SearchHit]]:
        """The best ``memories`` active memories and the best ``episodes`` messages for one query (embedded once),
        in the default mode; messages in ``skip_messages`` (those a chat prompt holds already) are passed over."""
        check_user_id(user_id)
        query = self.check_content(query, "query")
        vec = self.embed_checked([query])
        found = self.search_index.find(user_id, query, vec, memories, mode=DEFAULT_SEARCH_MODE) if memories else []
        if episodes <= 0:
            return found, []
        skip = set(skip_messages)
        entry = self.episodes.entry(user_id, self.embed_checked)
        said = self._episodes(entry, vec, query, episodes + len(skip), DEFAULT_SEARCH_MODE)
        return found, [h for h in said if h.id not in skip][:episodes]

    def _episodes(self, entry: EpisodeEntry, vec: np.ndarray | None, query: str, limit: int,
                  mode: SearchMode) -> list[SearchHit]:
        unit = None if vec is None else self.store.memories.check_queries(vec)[0]
        return self.episodes.find(entry, query, unit, limit, mode=mode)

    def process_messages(self, messages: Sequence[NewMessage | dict[str, Any]], *, user_id: str,
                         session_id: str | None = None) -> PipelineResult:
        """Learn from one exchange now, in this thread: check and store the messages, then run the pipeline. Bad
        input raises InvalidInputError; model or database failures are in the run's record."""
        check_user_id(user_id)
        clean = self.check_messages(messages)
        self._need_llm()
        saved = self.save_messages(clean, user_id=user_id, session_id=session_id)
        return self.learn(saved, user_id=user_id, session_id=session_id, dated=dated(clean))

    def learn(self, messages: Sequence[Message], *, user_id: str, session_id: str | None,
              dated: datetime | None = None, lease: JobLease | None = None) -> PipelineResult:
        """Run the pipeline over stored messages (checked at the door when they came in). A queue worker passes its
        ``lease``: the changes then land only while it still holds the job."""
        llm = self._need_llm()
        return self.pipeline().run(llm, messages, user_id=user_id, session_id=session_id, dated=dated, lease=lease)

    def _need_llm(self) -> LLM:
        if self.llm is None:
            raise LLMError("No LLM is configured, so memories cannot be extracted. Use add() to store them directly.")
        return self.llm

    def reflect(self, *, user_id: str, since: datetime | None = None, policy: ReflectionPolicy | None = None,
                keep_going: Callable[[], bool] = lambda: True) -> ReflectionReport:
        """Review the user's active memories not reviewed since they last changed (only those changed at or after
        ``since``, when given) and repair what consolidation let through; see :mod:`timemory.core._reflection`.
        ``keep_going`` is asked before each group (a worker stops when it lost its job)."""
        check_user_id(user_id)
        if self.llm is None:
            raise LLMError("No LLM is configured, so memories cannot be reviewed.")
        since = as_utc(since)
        return Reflection(self.store, self.embed_checked, self.llm, self.embedder.name, policy, clock=self.now).run(
            user_id, since=since, keep_going=keep_going)


def dated(messages: Sequence[NewMessage]) -> datetime | None:
    """The time of the latest message the caller dated: a replayed exchange is dated like its messages."""
    return max((m.created_at for m in messages if m.created_at is not None), default=None)


def merged(memories: Sequence[SearchHit], episodes: Sequence[SearchHit], limit: int) -> list[SearchHit]:
    """Memory and episode hits as one list by score (both fuse meaning and words alike); a memory comes before an
    episode that scores the same."""
    return sorted([*memories, *episodes], key=lambda h: (-h.score, h.kind != "memory"))[:limit]
