"""``TiMem``: the public door. It holds one :class:`~timemory.core._engine.Engine` and delegates to the core —
nothing here decides anything. ``from_settings`` builds the configured backends (see :mod:`timemory.wiring`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np

from timemory._validation import MemoryFilter, check_user_id
from timemory.core._accounts import Sessions, Users
from timemory.core._candidates import CandidatePolicy
from timemory.core._chat import ChatService
from timemory.core._engine import DEFAULT_SEARCH_MODE, DEFAULT_SEARCH_SCOPE, Engine
from timemory.core._jobs import Jobs, Worker
from timemory.core._memories import MemoryBook
from timemory.core._reflection import ReflectionPolicy
from timemory.core._summaries import Summaries
from timemory.errors import ConfigurationError, InvalidInputError
from timemory.providers._embeddings import Embedder
from timemory.providers._llm import LLM
from timemory.schemas import (
    Experiment,
    Memory,
    MemoryEdit,
    MemoryEvent,
    Message,
    NewMessage,
    PipelineResult,
    ReflectionReport,
    RunDiff,
    SearchHit,
    SearchMode,
    SearchScope,
)
from timemory.search import EpisodeLevers, Search, build_search
from timemory.settings import Settings
from timemory.store import Store
from timemory.wiring import build_engine


class TiMem:
    """Long-term memory for LLM chat. Backends are passed in; ``from_settings`` builds the configured ones."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        llm: LLM | None = None,
        *,
        similar_k: int = 5,
        similarity_threshold: float = 0.35,
        candidates: CandidatePolicy | None = None,
        max_content_chars: int = 32_000,
        today: Callable[[], date] | None = None,
        search: Search | None = None,
    ) -> None:
        self.engine = Engine(store, search or build_search(store), embedder, llm, similar_k=similar_k,
                             similarity_threshold=similarity_threshold, candidates=candidates,
                             max_content_chars=max_content_chars, today=today)
        self._attach()

    @classmethod
    def from_engine(cls, engine: Engine) -> TiMem:
        tm = cls.__new__(cls)
        tm.engine = engine
        tm._attach()
        return tm

    def _attach(self) -> None:
        store = self.engine.store
        self.users = Users(store)
        self.sessions = Sessions(store)
        self.jobs = Jobs(self.engine)
        self.keys = store.keys
        self._book = MemoryBook(self.engine)
        self._chat: ChatService | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> TiMem:
        return cls.from_engine(build_engine(settings or Settings()))

    def variant(self, *, cache_answers: bool = False, similar_k: int | None = None,
                similarity_threshold: float | None = None, candidates: CandidatePolicy | None = None,
                llm: LLM | None = None, levers: EpisodeLevers | None = None) -> TiMem:
        """A TiMem on the same database and embedder with other settings (the lab runs experiments this way).
        ``cache_answers`` keeps every model answer in the database and reuses it for the same request;
        ``candidates`` says which memories consolidation is shown; ``llm`` answers instead of the configured model;
        ``levers`` (:class:`timemory.search.EpisodeLevers`) rank stored messages."""
        return TiMem.from_engine(self.engine.variant(cache_answers=cache_answers, similar_k=similar_k,
                                                     similarity_threshold=similarity_threshold,
                                                     candidates=candidates, llm=llm, levers=levers))

    # ------------------------------------------------------------------ what is in use
    @property
    def llm(self) -> LLM | None:
        return self.engine.llm

    @property
    def embedder(self) -> Embedder:
        return self.engine.embedder

    @property
    def similar_k(self) -> int:
        return self.engine.similar_k

    @property
    def similarity_threshold(self) -> float:
        return self.engine.similarity_threshold

    @property
    def max_content_chars(self) -> int:
        return self.engine.max_content_chars

    @property
    def backend(self) -> str:
        """The database kind: sqlite, mysql or tidb."""
        return self.engine.store.backend

    @property
    def chat(self) -> ChatService:
        """Chat with memory (streamed replies grounded in the user's memories); needs an LLM."""
        if self._chat is None:
            if self.engine.llm is None:
                raise ConfigurationError("Chat needs an LLM; none is configured.")
            self._chat = ChatService(self.engine, self.engine.llm, jobs=self.jobs)
        return self._chat

    @property
    def summaries(self) -> Summaries:
        """Rolling session summaries (the chat keeps them up to date; ``update`` makes a new version now)."""
        return self.chat.summaries

    def worker(self, **options: Any) -> Worker:
        """A queue worker on this engine (``lease_seconds``, ``poll_seconds``, ``retry_seconds``, ``name``)."""
        return Worker(self.engine, events=self.jobs.events, **options)

    def describe(self) -> dict[str, str]:
        """The backends in use, for display: database, LLM and embedding model."""
        llm = getattr(self.llm, "label", None) or getattr(self.llm, "model", None) or "none"
        return {"database": self.backend, "llm": str(llm), "embedder": self.embedder.name}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for ``texts`` from this engine's embedding model (one row each)."""
        return self.engine.embed(texts)

    def check_content(self, content: Any, what: str = "content") -> str:
        """Stripped, non-empty text within this engine's length limit."""
        return self.engine.check_content(content, what)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.store.close()

    # ------------------------------------------------------------------ memories
    def add(self, content: str, *, user_id: str, type: str = "preference", status: str = "active",
            source_message_ids: Sequence[str] = (), session_id: str | None = None,
            created_at: datetime | None = None, reason: str | None = None, subject: str | None = None) -> Memory:
        """Store one memory as given (no LLM). ``subject`` names what single-valued thing it holds ("home", "job":
        see ``SUBJECTS``), so a later fact with the same key is compared with it whatever the wording."""
        return self._book.add(content, user_id=user_id, type=type, status=status,
                              source_message_ids=source_message_ids, session_id=session_id, created_at=created_at,
                              reason=reason, subject=subject)

    def search(self, query: str, *, user_id: str, limit: int = 5, types: Sequence[str] | None = None,
               statuses: Sequence[str] | None = ("active",), mode: SearchMode = DEFAULT_SEARCH_MODE,
               scope: SearchScope = DEFAULT_SEARCH_SCOPE) -> list[SearchHit]:
        """What best matches ``query`` among the user's memories (``scope="memories"``), everything they said
        (``"episodes"``: each stored message, found also by the memories learnt from it) or both (``"all"``).
        ``hybrid`` fuses meaning (vector) and shared words (BM25), ``vector`` ranks by meaning only, ``keyword`` by
        shared words only (no embedding). Every hit carries its score parts in ``hit.scores``."""
        return self.engine.search(query, user_id=user_id, limit=limit, types=types, statuses=statuses, mode=mode,
                                  scope=scope)

    def get_memory(self, memory_id: str, *, user_id: str) -> Memory:
        return self.engine.store.memories.get(check_user_id(user_id), memory_id)

    def get_memories(self, memory_ids: Sequence[str], *, user_id: str) -> dict[str, Memory]:
        """The user's memories among these ids, by id (unknown ids and other users' ids are left out)."""
        return self.engine.store.memories.get_many(check_user_id(user_id), list(memory_ids))

    def list_memories(self, *, user_id: str, types: Sequence[str] | None = None,
                      statuses: Sequence[str] | None = None, text: str | None = None, limit: int = 100,
                      offset: int = 0, session_id: str | None = None, since: datetime | None = None,
                      until: datetime | None = None, where: MemoryFilter | None = None) -> list[Memory]:
        """The user's memories, most recently changed first; filter by keyword or pass one ``where`` filter."""
        if limit < 0 or offset < 0:
            raise InvalidInputError("limit and offset must not be negative.")
        where = where or MemoryFilter.of(types=types, statuses=statuses, text=text, session_id=session_id,
                                         since=since, until=until)
        return self.engine.store.memories.list(check_user_id(user_id), where, limit=limit, offset=offset)

    def count_memories(self, *, user_id: str, types: Sequence[str] | None = None,
                       statuses: Sequence[str] | None = None, text: str | None = None,
                       session_id: str | None = None, since: datetime | None = None,
                       until: datetime | None = None, where: MemoryFilter | None = None) -> int:
        where = where or MemoryFilter.of(types=types, statuses=statuses, text=text, session_id=session_id,
                                         since=since, until=until)
        return self.engine.store.memories.count(check_user_id(user_id), where)

    def update_memory(self, memory_id: str, *, user_id: str, content: str | None = None, type: str | None = None,
                      status: str | None = None, reason: str | None = None) -> Memory:
        """Edit by hand: new content is re-embedded; one EDIT (or OUTDATE/REACTIVATE) event is written."""
        edit = MemoryEdit(memory_id=memory_id, content=content, type=type, status=status)
        return self._book.edit([edit], user_id=user_id, reason=reason)[0]

    def edit_memories(self, edits: Sequence[MemoryEdit], *, user_id: str, reason: str | None = None) -> list[Memory]:
        """Apply several hand edits in one transaction: all of them or, on any invalid edit or conflict, none."""
        return self._book.edit(edits, user_id=user_id, reason=reason)

    def set_status(self, memory_ids: Sequence[str], *, user_id: str, status: str) -> list[Memory]:
        """Outdate or reactivate several memories at once (one transaction)."""
        return self._book.set_status(memory_ids, user_id=user_id, status=status)

    def delete_memory(self, memory_id: str, *, user_id: str) -> None:
        self._book.delete([memory_id], user_id=user_id)

    def delete_memories(self, memory_ids: Sequence[str], *, user_id: str) -> None:
        """Delete in one transaction; each memory's events are kept."""
        self._book.delete(memory_ids, user_id=user_id)

    def erase(self, *, memory_id: str, user_id: str) -> None:
        """Erase one memory: unlike delete, nothing of it is kept — its events go, and its text is taken out of the
        pipeline traces, cached model answers and experiment records that hold it."""
        self.engine.store.erasure.memory(check_user_id(user_id), memory_id)

    def erase_user(self, *, user_id: str) -> dict[str, int]:
        """Erase a user everywhere (``tm.users.delete``): their keys stop working and their jobs are gone at once;
        returns the rows removed per table."""
        return self.users.delete(user_id=user_id)

    def import_memories(self, records: Sequence[tuple[Memory, list[MemoryEvent] | None]], *,
                        user_id: str) -> int:
        """Put exported memories back (with their history where the export has it); returns how many were new."""
        return self._book.import_records(records, user_id=user_id)

    def memory_embeddings(self, *, user_id: str) -> tuple[list[Memory], np.ndarray]:
        """Every memory of the user with its vector (rows in the same order), for maps and exports."""
        return self.engine.store.memories.with_vectors(check_user_id(user_id))

    def supersession_chain(self, memory_id: str, *, user_id: str) -> list[Memory]:
        """The memory, then what superseded it, and so on (stops on cycles and missing links)."""
        return self._book.supersession_chain(memory_id, user_id=user_id)

    # ------------------------------------------------------------------ history and time travel
    def history(self, memory_id: str, *, user_id: str) -> list[MemoryEvent]:
        return self.engine.store.memories.history(check_user_id(user_id), memory_id)

    def histories(self, memory_ids: Sequence[str], *, user_id: str) -> dict[str, list[MemoryEvent]]:
        """The history of several memories at once, by memory id."""
        return self.engine.store.memories.histories(check_user_id(user_id), memory_ids)

    def state_at(self, at: datetime, *, user_id: str) -> list[Memory]:
        """The user's memories exactly as they were at ``at``: content, type and status as of then, memories
        created later absent, memories deleted later present. Naive times are UTC."""
        return self._book.state_at(at, user_id=user_id)

    def events(self, *, user_id: str, until: datetime | None = None) -> list[MemoryEvent]:
        """Every event of the user's memories in the order they happened, optionally only up to ``until``."""
        return self.engine.store.memories.events(check_user_id(user_id), until=until)

    def run_diff(self, run_id: str, *, user_id: str) -> RunDiff:
        """What one pipeline run changed: each memory it touched, before and after."""
        return self._book.run_diff(run_id, user_id=user_id)

    # ------------------------------------------------------------------ the pipeline and its runs
    def process_messages(self, messages: Sequence[NewMessage | dict[str, Any]], *, user_id: str,
                         session_id: str | None = None) -> PipelineResult:
        """Learn from one exchange now. Bad input raises InvalidInputError; model or database failures are in the
        run's record. (``tm.jobs.enqueue`` queues it for a worker instead.)"""
        return self.engine.process_messages(messages, user_id=user_id, session_id=session_id)

    def save_messages(self, messages: Sequence[NewMessage | dict[str, Any]], *, user_id: str,
                      session_id: str | None = None) -> list[Message]:
        """Store messages without learning from them: they are searchable at once (``scope="episodes"``), and
        ``process_messages`` or a job can learn from them later. A message id the user has already is kept."""
        engine = self.engine
        return engine.save_messages(engine.check_messages(messages), user_id=check_user_id(user_id),
                                    session_id=session_id)

    def reflect(self, *, user_id: str, since: datetime | None = None,
                max_groups: int | None = None) -> ReflectionReport:
        """Review the user's memories for ones a later memory replaced or that say the same thing twice, and repair
        them (one LLM call per small group, each applied as a run of kind ``reflection``). Resumable: what was
        reviewed and has not changed since is not asked again. ``max_groups`` bounds the calls of this pass."""
        return self.engine.reflect(user_id=user_id, since=since, policy=ReflectionPolicy(max_groups=max_groups))

    def on_run(self, listener: Callable[[PipelineResult], None]) -> None:
        """Call ``listener`` with every pipeline run this process saves (exchanges from the queue, the chat and
        direct calls, and reflection); for metrics. A listener that raises is logged and ignored."""
        self.engine.store.runs.listeners.append(listener)

    def list_runs(self, *, user_id: str, session_id: str | None = None, until: datetime | None = None,
                  offset: int = 0, limit: int = 20, oldest_first: bool = False) -> list[PipelineResult]:
        """The user's pipeline runs (each with its trace), newest first unless ``oldest_first``; only those made at
        or before ``until`` when given."""
        return self.engine.store.runs.list(check_user_id(user_id), limit=limit, session_id=session_id, until=until,
                                           offset=offset, oldest_first=oldest_first)

    def count_runs(self, *, user_id: str, until: datetime | None = None) -> int:
        return self.engine.store.runs.count(check_user_id(user_id), until=until)

    def get_run(self, run_id: str, *, user_id: str) -> PipelineResult:
        """One pipeline run with its trace."""
        return self.engine.store.runs.get(check_user_id(user_id), run_id)

    def processed_messages(self, *, user_id: str) -> dict[str, str]:
        """Message id → ok, empty or failed: how the last pipeline runs that read each message ended."""
        return self.engine.store.runs.processed_messages(check_user_id(user_id))

    # ------------------------------------------------------------------ lab experiments
    def list_experiments(self) -> list[Experiment]:
        return self.engine.store.experiments.list()

    def get_experiment(self, name: str) -> Experiment | None:
        return self.engine.store.experiments.get(name)

    def save_experiment(self, experiment: Experiment) -> None:
        """Insert or update the experiment with this name."""
        self.engine.store.experiments.save(experiment)

