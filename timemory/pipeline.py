"""``TiMem``: the memory pipeline and the public API.

process_messages = extract (1 LLM call) → embed facts (1 batched call) → similar memories per fact
→ consolidate (1 LLM call, skipped when nothing similar exists) → apply everything in one transaction.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from .accounts import Sessions, Users
from .consolidation import Plan, find_candidates, normalise_text, plan_consolidation
from .embeddings import Embedder
from .errors import (
    ConcurrentUpdateError,
    ConfigurationError,
    EmbeddingError,
    LLMError,
    NotFoundError,
    TiMemoryError,
    ValidationError,
)
from .jobs import Jobs
from .keys import Keys
from .llm import LLM, Usage
from .prompts import FACT_EXTRACTION_EXAMPLES, FACT_EXTRACTION_PROMPT, FACT_EXTRACTION_USER
from .schemas import (
    Experiment,
    ExtractedFact,
    FactExtraction,
    JobLease,
    Memory,
    MemoryEdit,
    MemoryEvent,
    PipelineResult,
    RunDiff,
    SearchHit,
    SearchMode,
)
from .store import AddMemory, ChangeMemory, DeleteMemory, Store
from .timeline import diff_run, state_at
from .validation import check_content, check_each, check_search_mode, check_status, check_type, check_user_id

if TYPE_CHECKING:
    from .chat import ChatService
    from .settings import Settings

log = logging.getLogger(__name__)

MAX_FACTS = 20
PROMPT_MESSAGE_CHARS = 2_000
PROMPT_CONVERSATION_CHARS = 8_000
MAX_PLAN_ATTEMPTS = 3
# Chosen on the labelled retrieval set (docs/benchmarks.md, "Search quality"): the default for questions, and the
# mode that finds the memories a new fact contradicts most often (they share the slot, seldom the words).
DEFAULT_SEARCH_MODE: SearchMode = "hybrid"
CANDIDATE_MODE: SearchMode = "hybrid"


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w{4,}", text.lower()))


# Each example fact, with the words of it that the example's user actually said ("nurse", "lyon", ...).
_EXAMPLE_WORDS = {normalise_text(f["content"]): _words(f["content"]) & _words(conversation)
                  for conversation, facts in FACT_EXTRACTION_EXAMPLES for f in facts}


def _copied_example(fact: str, conversation: str) -> bool:
    """True for a fact copied from the prompt's worked example rather than taken from this conversation."""
    key_words = _EXAMPLE_WORDS.get(normalise_text(fact))
    return key_words is not None and not key_words <= _words(conversation)


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
        max_content_chars: int = 32_000,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.llm = llm
        self.users = Users(store)
        self.sessions = Sessions(store)
        self.jobs = Jobs(self)
        self.keys = Keys(store)
        self._chat: ChatService | None = None
        self.similar_k = similar_k
        self.similarity_threshold = similarity_threshold
        self.max_content_chars = max_content_chars
        self._today = today or (lambda: datetime.now(UTC).date())

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> TiMem:
        from .backends import build_embedder, build_llm, build_store
        from .settings import Settings

        settings = settings or Settings()
        embedder = build_embedder(settings)
        return cls(
            build_store(settings, embedder),
            embedder,
            build_llm(settings),
            similar_k=settings.similar_k,
            similarity_threshold=settings.similarity_threshold,
            max_content_chars=settings.max_content_chars,
        )

    def variant(self, *, cache_answers: bool = False, similar_k: int | None = None,
                similarity_threshold: float | None = None) -> TiMem:
        """A TiMem on the same database and embedder with other settings (the lab runs experiments this way).
        ``cache_answers`` keeps every model answer in the database and reuses it for the same request."""
        model = self.llm
        if cache_answers and model is not None:
            from .llm_cache import CachedLLM

            model = CachedLLM(model, self.store)
        return TiMem(self.store, self.embedder, model,
                     similar_k=self.similar_k if similar_k is None else similar_k,
                     similarity_threshold=(self.similarity_threshold if similarity_threshold is None
                                           else similarity_threshold),
                     max_content_chars=self.max_content_chars, today=self._today)

    @property
    def chat(self) -> ChatService:
        """Chat with memory (streamed replies grounded in the user's memories); needs an LLM."""
        if self._chat is None:
            if self.llm is None:
                raise ConfigurationError("Chat needs an LLM; none is configured.")
            from .chat import ChatService

            self._chat = ChatService(self, self.llm)
        return self._chat

    def describe(self) -> dict[str, str]:
        """The backends in use, for display: database, LLM and embedding model."""
        llm = getattr(self.llm, "label", None) or getattr(self.llm, "model", None) or "none"
        return {"database": self.store.backend, "llm": str(llm), "embedder": self.embedder.name}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for ``texts`` from this engine's embedding model (one row each)."""
        return self._embed([self.check_content(t, "text") for t in texts])

    def check_content(self, content: Any, what: str = "content") -> str:
        """Stripped, non-empty text within this engine's length limit."""
        return check_content(content, self.max_content_chars, what)

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.embedder.embed(texts)
        if vectors.shape[0] != len(texts):
            raise EmbeddingError(f"The embedder returned {vectors.shape[0]} vectors for {len(texts)} texts.")
        return vectors

    # ------------------------------------------------------------------ simple API
    def add(
        self,
        content: str,
        *,
        user_id: str,
        type: str = "preference",
        status: str = "active",
        source_message_ids: Sequence[str] = (),
        session_id: str | None = None,
        created_at: datetime | None = None,
        reason: str | None = None,
    ) -> Memory:
        """Store one memory as given (no LLM)."""
        check_user_id(user_id)
        content = self.check_content(content)
        op = AddMemory(
            content=content, type=check_type(type), status=check_status(status), embedding=self._embed([content])[0],
            actor="user", reason=reason or "added by hand", source_message_ids=list(source_message_ids),
            source_session_id=session_id, created_at=created_at,
        )
        changes = self.store.apply(user_id, [op])
        return self.store.get_memory(user_id, changes[0].memory_id)

    def search(
        self,
        query: str,
        *,
        user_id: str,
        limit: int = 5,
        types: Sequence[str] | None = None,
        statuses: Sequence[str] | None = ("active",),
        mode: SearchMode = DEFAULT_SEARCH_MODE,
    ) -> list[SearchHit]:
        """The user's memories that best match ``query``: ``hybrid`` fuses meaning (vector) and shared words
        (BM25), ``vector`` ranks by meaning only, ``keyword`` by shared words only (no embedding). Every hit carries
        its score parts in ``hit.scores``."""
        check_user_id(user_id)
        query = self.check_content(query, "query")
        mode = check_search_mode(mode)
        if limit <= 0:
            return []
        vec = None if mode == "keyword" else self._embed([query])
        return self.store.find(user_id, query, vec, limit, mode=mode, types=check_each(types, check_type),
                               statuses=check_each(statuses, check_status))

    def get_memory(self, memory_id: str, *, user_id: str) -> Memory:
        return self.store.get_memory(check_user_id(user_id), memory_id)

    def list_memories(
        self,
        *,
        user_id: str,
        types: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        text: str | None = None,
        limit: int = 100,
        offset: int = 0,
        session_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Memory]:
        if limit < 0 or offset < 0:
            raise ValidationError("limit and offset must not be negative.")
        filters = self._filters(user_id, types, statuses, text, session_id, since, until)
        return self.store.list_memories(user_id, **filters, limit=limit, offset=offset)

    def count_memories(
        self,
        *,
        user_id: str,
        types: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        text: str | None = None,
        session_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        filters = self._filters(user_id, types, statuses, text, session_id, since, until)
        return self.store.count_memories(user_id, **filters)

    @staticmethod
    def _filters(
        user_id: str,
        types: Sequence[str] | None,
        statuses: Sequence[str] | None,
        text: str | None,
        session_id: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> dict[str, Any]:
        """The checked keyword filters shared by list_memories and count_memories."""
        check_user_id(user_id)
        return {"types": check_each(types, check_type), "statuses": check_each(statuses, check_status),
                "text": text or None, "session_id": session_id, "since": since, "until": until}

    def update_memory(
        self,
        memory_id: str,
        *,
        user_id: str,
        content: str | None = None,
        type: str | None = None,
        status: str | None = None,
        reason: str | None = None,
    ) -> Memory:
        """Edit by hand: new content is re-embedded; one EDIT (or OUTDATE/REACTIVATE) event is written."""
        edit = MemoryEdit(memory_id=memory_id, content=content, type=type, status=status)
        return self.edit_memories([edit], user_id=user_id, reason=reason)[0]

    def edit_memories(self, edits: Sequence[MemoryEdit], *, user_id: str, reason: str | None = None) -> list[Memory]:
        """Apply several hand edits in one transaction: all of them or, on any invalid edit or conflict, none.

        Empty content is refused (an edit cannot blank a memory); an edit whose ``seen_updated_at`` no longer matches
        raises :class:`ConflictError`. Changed text is re-embedded in one batched call.
        """
        check_user_id(user_id)
        if not edits:
            return []
        ids = [e.memory_id for e in edits]
        if len(set(ids)) != len(ids):
            raise ValidationError("Each memory can be edited once per save.")
        current = self.store.get_memories(user_id, ids)
        for e in edits:
            if e.memory_id not in current:
                raise NotFoundError(f"No memory '{e.memory_id}' for user '{user_id}'.")
        contents: dict[str, str] = {}
        for e in edits:
            if e.content is not None:
                label = f"The new text for '{current[e.memory_id].content[:60]}'"
                if isinstance(e.content, str) and not e.content.strip():
                    raise ValidationError(f"{label} is empty: a memory cannot be blank (delete it instead). "
                                          "Nothing was saved.")
                text = self.check_content(e.content, label)
                if text != current[e.memory_id].content:
                    contents[e.memory_id] = text
        vectors = dict(zip(contents, self._embed(list(contents.values())), strict=True)) if contents else {}
        ops = [ChangeMemory(
            memory_id=e.memory_id, content=contents.get(e.memory_id), embedding=vectors.get(e.memory_id),
            type=check_type(e.type) if e.type is not None else None,
            status=check_status(e.status) if e.status is not None else None,
            event="EDIT", actor="user", reason=reason or "edited by hand", expected_updated_at=e.seen_updated_at,
        ) for e in edits]
        self.store.apply(user_id, ops)
        found = self.store.get_memories(user_id, ids)
        return [found[i] for i in ids]

    def get_memories(self, memory_ids: Sequence[str], *, user_id: str) -> dict[str, Memory]:
        """The user's memories among these ids, by id (unknown ids and other users' ids are left out)."""
        return self.store.get_memories(check_user_id(user_id), list(memory_ids))

    def set_status(self, memory_ids: Sequence[str], *, user_id: str, status: str) -> list[Memory]:
        """Outdate or reactivate several memories at once (one transaction)."""
        check_user_id(user_id)
        status = check_status(status)
        ops = [ChangeMemory(memory_id=m, status=status, actor="user", reason=f"set to {status} by hand")
               for m in dict.fromkeys(memory_ids)]
        self.store.apply(user_id, ops)
        return list(self.store.get_memories(user_id, list(memory_ids)).values())

    def delete_memory(self, memory_id: str, *, user_id: str) -> None:
        self.delete_memories([memory_id], user_id=user_id)

    def delete_memories(self, memory_ids: Sequence[str], *, user_id: str) -> None:
        """Delete in one transaction; each memory's events are kept."""
        check_user_id(user_id)
        ops = [DeleteMemory(memory_id=m, reason="deleted by hand") for m in dict.fromkeys(memory_ids)]
        self.store.apply(user_id, ops)

    def history(self, memory_id: str, *, user_id: str) -> list[MemoryEvent]:
        return self.store.history(check_user_id(user_id), memory_id)

    def histories(self, memory_ids: Sequence[str], *, user_id: str) -> dict[str, list[MemoryEvent]]:
        """The history of several memories at once, by memory id."""
        return self.store.histories(check_user_id(user_id), memory_ids)

    def import_memories(self, records: Sequence[tuple[Memory, list[MemoryEvent] | None]], *,
                        user_id: str) -> int:
        """Put exported memories back: those with their history exactly as they were (ids, times, links, events),
        the others added with their ids and times. Memories the user already has are left alone; returns how many
        were imported."""
        check_user_id(user_id)
        existing = set(self.store.get_memories(user_id, [m.id for m, _ in records]))
        todo = [(m, e) for m, e in records if m.id not in existing]
        if not todo:
            return 0
        vectors = self._embed([self.check_content(m.content) for m, _ in todo])
        restored = [(m, v, e) for (m, e), v in zip(todo, vectors, strict=True) if e is not None]
        ops = [AddMemory(content=m.content, type=check_type(m.type), status=check_status(m.status), embedding=v,
                         actor="user", reason="imported", source_message_ids=m.source_message_ids,
                         source_session_id=m.source_session_id, created_at=m.created_at, updated_at=m.updated_at,
                         memory_id=m.id, superseded_by=m.superseded_by)
               for (m, e), v in zip(todo, vectors, strict=True) if e is None]
        if restored:
            self.store.restore(user_id, restored)
        if ops:
            self.store.apply(user_id, ops)
        return len(todo)

    def close(self) -> None:
        """Release the database connections."""
        self.store.close()

    # ------------------------------------------------------------------ time travel
    def state_at(self, at: datetime, *, user_id: str) -> list[Memory]:
        """The user's memories exactly as they were at ``at``: content, type and status as of then, memories
        created later absent, memories deleted later present. Naive times are UTC."""
        check_user_id(user_id)
        if not isinstance(at, datetime):
            raise ValidationError("at must be a datetime.")
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        return state_at(user_id, self.store.events(user_id, until=at), at)

    def events(self, *, user_id: str, until: datetime | None = None) -> list[MemoryEvent]:
        """Every event of the user's memories in the order they happened, optionally only up to ``until``."""
        return self.store.events(check_user_id(user_id), until=until)

    def run_diff(self, run_id: str, *, user_id: str) -> RunDiff:
        """What one pipeline run changed: each memory it touched, before and after."""
        check_user_id(user_id)
        run = self.store.get_run(user_id, run_id)
        touched = {e.memory_id for e in self.store.run_events(user_id, run_id)}
        history = self.store.events(user_id, memory_ids=sorted(touched)) if touched else []
        return RunDiff(run_id=run_id, user_id=user_id, created_at=run.created_at, status=run.status,
                       changes=diff_run(user_id, history, run_id))

    def list_runs(self, *, user_id: str, session_id: str | None = None, until: datetime | None = None,
                  offset: int = 0, limit: int = 20, oldest_first: bool = False) -> list[PipelineResult]:
        """The user's pipeline runs (each with its trace), newest first unless ``oldest_first``; only those made at
        or before ``until`` when given."""
        return self.store.list_runs(check_user_id(user_id), limit=limit, session_id=session_id, until=until,
                                    offset=offset, oldest_first=oldest_first)

    def count_runs(self, *, user_id: str, until: datetime | None = None) -> int:
        return self.store.count_runs(check_user_id(user_id), until=until)

    def get_run(self, run_id: str, *, user_id: str) -> PipelineResult:
        """One pipeline run with its trace."""
        return self.store.get_run(check_user_id(user_id), run_id)

    def memory_embeddings(self, *, user_id: str) -> tuple[list[Memory], np.ndarray]:
        """Every memory of the user with its vector (rows in the same order), for maps and exports."""
        return self.store.memory_embeddings(check_user_id(user_id))

    def list_experiments(self) -> list[Experiment]:
        return self.store.list_experiments()

    def get_experiment(self, name: str) -> Experiment | None:
        return self.store.get_experiment(name)

    def supersession_chain(self, memory_id: str, *, user_id: str) -> list[Memory]:
        """The memory, then what superseded it, and so on (stops on cycles and missing links)."""
        chain: list[Memory] = []
        seen: set[str] = set()
        current: str | None = memory_id
        while current and current not in seen:
            seen.add(current)
            try:
                mem = self.store.get_memory(user_id, current)
            except NotFoundError:
                break
            chain.append(mem)
            current = mem.superseded_by
        return chain

    # ------------------------------------------------------------------ the pipeline
    def _check_messages(self, messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        if not isinstance(messages, (list, tuple)) or not messages:
            raise ValidationError("messages must be a non-empty list of {'role', 'content'} objects.")
        clean = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                raise ValidationError(f"Message {i} is not an object with 'role' and 'content'.")
            role = m.get("role")
            if role not in ("user", "assistant"):
                raise ValidationError(f"Message {i} has role {role!r}; use 'user' or 'assistant'.")
            content = self.check_content(m.get("content"), f"Message {i} content")
            created = m.get("created_at")
            if isinstance(created, str):
                try:
                    created = datetime.fromisoformat(created)
                except ValueError as exc:
                    raise ValidationError(f"Message {i} has created_at {created!r}, not an ISO time.") from exc
            if isinstance(created, datetime) and created.tzinfo is None:
                created = created.replace(tzinfo=UTC)  # naive times are UTC
            mid = m.get("id")
            if mid is not None and (not str(mid).strip() or len(str(mid)) > 128):
                raise ValidationError(f"Message {i} has an empty or too long id (at most 128 characters).")
            clean.append({"role": role, "content": content, "id": str(mid) if mid is not None else None,
                          "created_at": created})
        return clean

    def process_messages(
        self, messages: Sequence[dict[str, Any]], *, user_id: str, session_id: str | None = None,
        lease: JobLease | None = None,
    ) -> PipelineResult:
        """Learn from one exchange. Bad input raises ValidationError; model or database failures are in the trace.

        A queue worker passes its ``lease``: the changes then land only while it still holds the job."""
        check_user_id(user_id)
        clean = self._check_messages(messages)
        if self.llm is None:
            raise LLMError("No LLM is configured, so memories cannot be extracted. Use add() to store them directly.")
        saved = self.store.save_messages(user_id, session_id, clean)
        dated = [m["created_at"] for m in clean if isinstance(m.get("created_at"), datetime)]
        result = PipelineResult(
            run_id=str(uuid.uuid4()), user_id=user_id, session_id=session_id,
            source_message_ids=[m.id for m in saved], llm_model=getattr(self.llm, "model", None),
            embedding_model=self.embedder.name,
            # a replayed exchange's run is dated like its messages, so the timeline places it where it happened
            created_at=max(dated) if dated else datetime.now(UTC),
        )
        usage = Usage()
        try:
            self._run(clean, user_id, session_id, result, usage, lease)
        except TiMemoryError as exc:
            result.status = "failed"
            result.errors.append(f"{exc.code}: {exc}")
            log.warning("pipeline run %s failed: %s", result.run_id, exc)
        finally:
            result.llm_calls, result.prompt_tokens = usage.calls, usage.prompt_tokens
            result.completion_tokens = usage.completion_tokens
        try:
            self.store.save_run(result)
        except TiMemoryError as exc:
            result.errors.append(f"the trace could not be saved: {exc}")
        return result

    @staticmethod
    @contextmanager
    def _stage(result: PipelineResult, stage: str) -> Iterator[None]:
        """Add the time spent in the block to the stage's total (also when it raises)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            result.timings[stage] = round(result.timings.get(stage, 0.0) + time.perf_counter() - started, 6)

    def _run(
        self, messages: list[dict[str, Any]], user_id: str, session_id: str | None, result: PipelineResult,
        usage: Usage, lease: JobLease | None = None,
    ) -> None:
        assert self.llm is not None
        with self._stage(result, "extract"):
            facts = self._extract(messages, usage)
        result.facts = facts
        if not facts:
            result.status = "empty"
            return
        with self._stage(result, "embed"):
            vectors = self._embed([f.content for f in facts])
        result.embedding_calls += 1

        for attempt in range(1, MAX_PLAN_ATTEMPTS + 1):
            version = self.store.memory_version(user_id)
            with self._stage(result, "search"):
                similar = [[(h.memory, h.similarity)
                            for h in self.store.find(user_id, f.content, v, self.similar_k, mode=CANDIDATE_MODE,
                                                     statuses=("active", "outdated"), version=version)]
                           for f, v in zip(facts, vectors, strict=True)]
            short_ids, result.candidates = find_candidates(similar, self.similarity_threshold)
            with self._stage(result, "consolidate"):
                plan = plan_consolidation(self.llm, facts, result.candidates, short_ids, usage)
            result.decisions = plan.decisions
            try:
                with self._stage(result, "apply"):
                    ops = self._ops(facts, vectors, plan, messages, result, session_id)
                    result.changes = self.store.apply(user_id, ops, expected_version=version, run_id=result.run_id,
                                                      lease=lease)
                return
            except ConcurrentUpdateError:
                if attempt == MAX_PLAN_ATTEMPTS:
                    raise
                result.errors.append(f"attempt {attempt}: another writer changed these memories; planned again")

    def _extract(self, messages: list[dict[str, Any]], usage: Usage) -> list[ExtractedFact]:
        assert self.llm is not None
        lines = [f"{m['role']}: {m['content'][:PROMPT_MESSAGE_CHARS]}" for m in messages]
        conversation = "\n".join(lines)[-PROMPT_CONVERSATION_CHARS:]
        # A replayed conversation resolves "next week" against its own date, not against the day of the replay.
        dated = [m["created_at"] for m in messages if isinstance(m.get("created_at"), datetime)]
        today = max(dated).date() if dated else self._today()
        prompt = [{"role": "system", "content": FACT_EXTRACTION_PROMPT.format(today=today.isoformat())}]
        for example, example_facts in FACT_EXTRACTION_EXAMPLES:
            prompt.append({"role": "user", "content": FACT_EXTRACTION_USER.format(conversation=example)})
            prompt.append({"role": "assistant", "content": json.dumps({"facts": list(example_facts)})})
        prompt.append({"role": "user", "content": FACT_EXTRACTION_USER.format(conversation=conversation)})
        extraction = self.llm.parse(prompt, FactExtraction, usage=usage)
        facts: list[ExtractedFact] = []
        seen: set[str] = set()
        for f in extraction.facts:
            content = " ".join(f.content.split())[:1000]
            if not content or normalise_text(content) in seen or _copied_example(content, conversation):
                continue
            seen.add(normalise_text(content))
            facts.append(ExtractedFact(content=content, type=f.type))
        return facts[:MAX_FACTS]

    def _ops(
        self,
        facts: list[ExtractedFact],
        vectors: np.ndarray,
        plan: Plan,
        messages: list[dict[str, Any]],
        result: PipelineResult,
        session_id: str | None,
    ) -> list[AddMemory | ChangeMemory]:
        sources = result.source_message_ids
        created = max((m["created_at"] for m in messages if isinstance(m.get("created_at"), datetime)), default=None)
        ops: list[AddMemory | ChangeMemory] = []
        for i, supersedes in sorted(plan.adds.items()):
            ops.append(AddMemory(
                content=facts[i].content, type=facts[i].type, embedding=vectors[i], actor="pipeline",
                reason=plan.reasons.get(i), source_message_ids=list(sources), source_session_id=session_id,
                supersedes=supersedes, created_at=created,
            ))
        if plan.updates:
            ids = list(plan.updates)
            merged_vectors = self._embed([plan.updates[m][1] for m in ids])  # merged text needs its own vector
            result.embedding_calls += 1
            for mid, vec in zip(ids, merged_vectors, strict=True):
                fact, merged = plan.updates[mid]
                ops.append(ChangeMemory(memory_id=mid, content=merged, embedding=vec, event="UPDATE",
                                        actor="pipeline", reason=plan.reasons.get(fact),
                                        source_message_ids=list(sources), at=created))
        return ops
