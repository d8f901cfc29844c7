"""``TiMem``: the memory pipeline and the public API.

process_messages = extract (1 LLM call) → embed facts (1 batched call) → similar memories per fact
→ consolidate (1 LLM call, skipped when nothing similar exists) → apply everything in one transaction.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from .embeddings import Embedder
from .errors import (
    ConcurrentUpdateError,
    EmbeddingError,
    LLMError,
    NotFoundError,
    TiMemoryError,
    ValidationError,
)
from .llm import LLM, Usage
from .prompts import (
    FACT_EXTRACTION_PROMPT,
    FACT_EXTRACTION_USER,
    MEMORY_CONSOLIDATION_PROMPT,
    MEMORY_CONSOLIDATION_USER,
)
from .schemas import (
    MEMORY_STATUSES,
    MEMORY_TYPES,
    Candidate,
    ConsolidationPlan,
    Decision,
    ExtractedFact,
    FactExtraction,
    Memory,
    MemoryEvent,
    PipelineResult,
    SearchHit,
)
from .store import AddMemory, ChangeMemory, DeleteMemory, Store
from .store.store import check_user_id

if TYPE_CHECKING:
    from .settings import Settings

log = logging.getLogger(__name__)

MAX_FACTS = 20
PROMPT_MESSAGE_CHARS = 2_000
PROMPT_CONVERSATION_CHARS = 8_000
MAX_PLAN_ATTEMPTS = 3


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".!")


@dataclass
class _Plan:
    """What the pipeline will write, built from the model's decisions after validation."""

    adds: dict[int, list[str]] = field(default_factory=dict)  # fact index -> memory ids it supersedes
    updates: dict[str, tuple[int, str]] = field(default_factory=dict)  # memory id -> (fact, merged text)
    reasons: dict[int, str] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    absorbed: set[int] = field(default_factory=set)  # facts already known or merged into a memory


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

    # ------------------------------------------------------------------ validation
    def _content(self, content: Any, what: str = "content") -> str:
        if not isinstance(content, str):
            raise ValidationError(f"{what} must be text, not {type(content).__name__}.")
        content = content.strip()
        if not content:
            raise ValidationError(f"{what} is empty.")
        if len(content) > self.max_content_chars:
            raise ValidationError(
                f"{what} is {len(content):,} characters; the limit is {self.max_content_chars:,} "
                f"(TIMEMORY_MAX_CONTENT_CHARS)."
            )
        return content

    @staticmethod
    def _type(type_: str) -> str:
        if type_ not in MEMORY_TYPES:
            raise ValidationError(f"Unknown memory type '{type_}'. Use one of: {', '.join(MEMORY_TYPES)}.")
        return type_

    @staticmethod
    def _status(status: str) -> str:
        if status not in MEMORY_STATUSES:
            raise ValidationError(f"Unknown status '{status}'. Use one of: {', '.join(MEMORY_STATUSES)}.")
        return status

    @staticmethod
    def _statuses(statuses: Sequence[str] | None) -> list[str] | None:
        if statuses is None:
            return None
        if isinstance(statuses, str):
            statuses = [statuses]
        return [TiMem._status(s) for s in statuses]

    @staticmethod
    def _types(types: Sequence[str] | None) -> list[str] | None:
        if types is None:
            return None
        if isinstance(types, str):
            types = [types]
        return [TiMem._type(t) for t in types]

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.embedder.embed(texts)
        if vectors.shape[0] != len(texts):
            raise EmbeddingError(f"The embedder returned {vectors.shape[0]} vectors for {len(texts)} texts.")
        return vectors

    # ------------------------------------------------------------------ simple API
    def add(
        self,
        user_id: str,
        content: str,
        type: str = "preference",
        status: str = "active",
        *,
        source_message_ids: Sequence[str] = (),
        session_id: str | None = None,
        created_at: datetime | None = None,
        reason: str | None = None,
    ) -> Memory:
        """Store one memory as given (no LLM)."""
        check_user_id(user_id)
        content = self._content(content)
        op = AddMemory(
            content=content, type=self._type(type), status=self._status(status), embedding=self._embed([content])[0],
            actor="user", reason=reason or "added by hand", source_message_ids=list(source_message_ids),
            source_session_id=session_id, created_at=created_at,
        )
        changes = self.store.apply(user_id, [op])
        return self.store.get_memory(user_id, changes[0].memory_id)

    def search(
        self,
        query: str,
        user_id: str,
        limit: int = 5,
        types: Sequence[str] | None = None,
        statuses: Sequence[str] | None = ("active",),
    ) -> list[SearchHit]:
        check_user_id(user_id)
        query = self._content(query, "query")
        if limit <= 0:
            return []
        vec = self._embed([query])
        hits = self.store.search(user_id, vec, limit, types=self._types(types), statuses=self._statuses(statuses))[0]
        return [SearchHit(memory=m, score=s) for m, s in hits]

    def get_memory(self, memory_id: str, user_id: str) -> Memory:
        return self.store.get_memory(check_user_id(user_id), memory_id)

    def list_memories(
        self,
        user_id: str,
        types: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        text: str | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        session_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Memory]:
        check_user_id(user_id)
        if limit < 0 or offset < 0:
            raise ValidationError("limit and offset must not be negative.")
        return self.store.list_memories(
            user_id, types=self._types(types), statuses=self._statuses(statuses), text=text or None,
            session_id=session_id, since=since, until=until, limit=limit, offset=offset,
        )

    def count_memories(
        self,
        user_id: str,
        types: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        text: str | None = None,
        *,
        session_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        check_user_id(user_id)
        return self.store.count_memories(
            user_id, types=self._types(types), statuses=self._statuses(statuses), text=text or None,
            session_id=session_id, since=since, until=until,
        )

    def update_memory(
        self,
        memory_id: str,
        user_id: str,
        content: str | None = None,
        type: str | None = None,
        status: str | None = None,
        *,
        reason: str | None = None,
    ) -> Memory:
        """Edit by hand: new content is re-embedded; one EDIT (or OUTDATE/REACTIVATE) event is written."""
        check_user_id(user_id)
        current = self.store.get_memory(user_id, memory_id)
        new_content = self._content(content) if content is not None else None
        if new_content == current.content:
            new_content = None
        op = ChangeMemory(
            memory_id=memory_id,
            content=new_content,
            type=self._type(type) if type is not None else None,
            status=self._status(status) if status is not None else None,
            embedding=self._embed([new_content])[0] if new_content is not None else None,
            event="EDIT", actor="user", reason=reason or "edited by hand",
        )
        self.store.apply(user_id, [op])
        return self.store.get_memory(user_id, memory_id)

    def set_status(self, memory_ids: Sequence[str], user_id: str, status: str) -> list[Memory]:
        """Outdate or reactivate several memories at once (one transaction)."""
        check_user_id(user_id)
        status = self._status(status)
        ops = [ChangeMemory(memory_id=m, status=status, actor="user", reason=f"set to {status} by hand")
               for m in dict.fromkeys(memory_ids)]
        self.store.apply(user_id, ops)
        return list(self.store.get_memories(user_id, list(memory_ids)).values())

    def delete_memory(self, memory_id: str, user_id: str) -> None:
        check_user_id(user_id)
        self.store.apply(user_id, [DeleteMemory(memory_id=memory_id, reason="deleted by hand")])

    def delete_memories(self, memory_ids: Sequence[str], user_id: str) -> None:
        check_user_id(user_id)
        self.store.apply(user_id, [DeleteMemory(memory_id=m, reason="deleted by hand") for m in dict.fromkeys(memory_ids)])

    def history(self, memory_id: str, user_id: str) -> list[MemoryEvent]:
        return self.store.history(check_user_id(user_id), memory_id)

    def supersession_chain(self, memory_id: str, user_id: str) -> list[Memory]:
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
            content = self._content(m.get("content"), f"Message {i} content")
            created = m.get("created_at")
            if isinstance(created, str):
                try:
                    created = datetime.fromisoformat(created)
                except ValueError as exc:
                    raise ValidationError(f"Message {i} has created_at {created!r}, not an ISO time.") from exc
            mid = m.get("id")
            if mid is not None and (not str(mid).strip() or len(str(mid)) > 128):
                raise ValidationError(f"Message {i} has an empty or too long id (at most 128 characters).")
            clean.append({"role": role, "content": content, "id": str(mid) if mid is not None else None,
                          "created_at": created})
        return clean

    def process_messages(
        self, messages: Sequence[dict[str, Any]], user_id: str, session_id: str | None = None
    ) -> PipelineResult:
        """Learn from one exchange. Bad input raises ValidationError; model or database failures are in the trace."""
        check_user_id(user_id)
        clean = self._check_messages(messages)
        if self.llm is None:
            raise LLMError("No LLM is configured, so memories cannot be extracted. Use add() to store them directly.")
        saved = self.store.save_messages(user_id, session_id, clean)
        result = PipelineResult(
            run_id=str(uuid.uuid4()), user_id=user_id, session_id=session_id,
            source_message_ids=[m.id for m in saved], llm_model=getattr(self.llm, "model", None),
            embedding_model=self.embedder.name, created_at=datetime.now(UTC),
        )
        usage = Usage()
        try:
            self._run(clean, user_id, session_id, result, usage)
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

    def _timed(self, result: PipelineResult, stage: str, started: float) -> None:
        result.timings[stage] = round(result.timings.get(stage, 0.0) + time.perf_counter() - started, 6)

    def _run(
        self, messages: list[dict[str, Any]], user_id: str, session_id: str | None, result: PipelineResult,
        usage: Usage,
    ) -> None:
        assert self.llm is not None
        t = time.perf_counter()
        facts = self._extract(messages, usage)
        self._timed(result, "extract", t)
        result.facts = facts
        if not facts:
            result.status = "empty"
            return
        t = time.perf_counter()
        vectors = self._embed([f.content for f in facts])
        result.embedding_calls += 1
        self._timed(result, "embed", t)

        for attempt in range(1, MAX_PLAN_ATTEMPTS + 1):
            version = self.store.memory_version(user_id)
            t = time.perf_counter()
            similar = self.store.search(user_id, vectors, self.similar_k, statuses=("active", "outdated"))
            self._timed(result, "search", t)
            short_ids, candidates = self._candidates(similar)
            result.candidates = candidates
            t = time.perf_counter()
            plan = self._plan(facts, candidates, short_ids, usage, result)
            self._timed(result, "consolidate", t)
            result.decisions = plan.decisions
            t = time.perf_counter()
            ops, merged_embedding_calls = self._ops(facts, vectors, plan, messages, result, session_id)
            result.embedding_calls += merged_embedding_calls
            try:
                result.changes = self.store.apply(user_id, ops, expected_version=version, run_id=result.run_id)
                self._timed(result, "apply", t)
                return
            except ConcurrentUpdateError:
                self._timed(result, "apply", t)
                if attempt == MAX_PLAN_ATTEMPTS:
                    raise
                result.errors.append(f"attempt {attempt}: another writer changed these memories; planned again")

    def _extract(self, messages: list[dict[str, Any]], usage: Usage) -> list[ExtractedFact]:
        assert self.llm is not None
        lines = [f"{m['role']}: {m['content'][:PROMPT_MESSAGE_CHARS]}" for m in messages]
        conversation = "\n".join(lines)[-PROMPT_CONVERSATION_CHARS:]
        extraction = self.llm.parse(
            [
                {"role": "system", "content": FACT_EXTRACTION_PROMPT.format(today=self._today().isoformat())},
                {"role": "user", "content": FACT_EXTRACTION_USER.format(conversation=conversation)},
            ],
            FactExtraction,
            usage=usage,
        )
        facts: list[ExtractedFact] = []
        seen: set[str] = set()
        for f in extraction.facts:
            content = " ".join(f.content.split())[:1000]
            if not content or _norm(content) in seen:
                continue
            seen.add(_norm(content))
            facts.append(ExtractedFact(content=content, type=f.type))
        return facts[:MAX_FACTS]

    def _candidates(
        self, similar: list[list[tuple[Memory, float]]]
    ) -> tuple[dict[int, Memory], list[Candidate]]:
        short_ids: dict[int, Memory] = {}
        by_memory: dict[str, int] = {}
        candidates: list[Candidate] = []
        for fact_index, hits in enumerate(similar):
            for mem, score in hits:
                if score < self.similarity_threshold:
                    continue
                if mem.id not in by_memory:
                    by_memory[mem.id] = len(short_ids) + 1
                    short_ids[by_memory[mem.id]] = mem
                candidates.append(
                    Candidate(fact=fact_index, short_id=by_memory[mem.id], memory_id=mem.id, content=mem.content,
                              type=mem.type, status=mem.status, score=round(score, 4))
                )
        return short_ids, candidates

    def _plan(
        self,
        facts: list[ExtractedFact],
        candidates: list[Candidate],
        short_ids: dict[int, Memory],
        usage: Usage,
        result: PipelineResult,
    ) -> _Plan:
        plan = _Plan()
        with_candidates = sorted({c.fact for c in candidates})
        # An exact restatement of an active memory needs no model.
        active_text = {_norm(c.content): c for c in candidates if c.status == "active"}
        to_ask: list[int] = []
        for i in with_candidates:
            known = active_text.get(_norm(facts[i].content))
            if known is not None:
                plan.absorbed.add(i)
                plan.decisions.append(Decision(fact=i, action="NONE", memory_id=known.memory_id,
                                               reason="same text as an existing memory"))
            else:
                to_ask.append(i)
        if to_ask:
            self._ask_model(facts, to_ask, candidates, short_ids, usage, plan)
        for i in range(len(facts)):
            if i in plan.adds or i in plan.absorbed:
                continue
            had = i in to_ask
            plan.adds[i] = []
            reason = ("no usable decision from the model; kept as a new memory" if had
                      else "nothing similar stored yet")
            plan.reasons[i] = reason
            plan.decisions.append(Decision(fact=i, action="ADD", reason=reason))
        return plan

    def _ask_model(
        self,
        facts: list[ExtractedFact],
        to_ask: list[int],
        candidates: list[Candidate],
        short_ids: dict[int, Memory],
        usage: Usage,
        plan: _Plan,
    ) -> None:
        assert self.llm is not None
        shown = sorted({c.short_id for c in candidates if c.fact in to_ask})
        fact_lines = "\n".join(f"{i}. [{facts[i].type}] {facts[i].content}" for i in to_ask)
        memory_lines = "\n".join(
            f"{sid}. [{short_ids[sid].type}, {short_ids[sid].status}] {short_ids[sid].content}" for sid in shown
        )
        answer = self.llm.parse(
            [
                {"role": "system", "content": MEMORY_CONSOLIDATION_PROMPT},
                {"role": "user", "content": MEMORY_CONSOLIDATION_USER.format(facts=fact_lines, memories=memory_lines)},
            ],
            ConsolidationPlan,
            usage=usage,
        )
        self._validate(answer, facts, set(to_ask), {sid: short_ids[sid] for sid in shown}, plan)

    @staticmethod
    def _validate(
        answer: ConsolidationPlan,
        facts: list[ExtractedFact],
        asked: set[int],
        shown: dict[int, Memory],
        plan: _Plan,
    ) -> None:
        """Turn the model's decisions into a plan; anything unsafe is rejected and reported, never applied."""
        fate: dict[int, str] = {}  # fact -> "store" | "absorb"
        targeted: set[str] = set()

        def reject(d: Any, why: str, memory_id: str | None = None) -> None:
            plan.decisions.append(Decision(fact=d.fact, action=d.action, memory_id=memory_id, content=d.content,
                                           reason=d.reason, accepted=False, rejected_because=why))

        for d in answer.decisions:
            if d.fact not in asked:
                reject(d, f"fact {d.fact} was not among the new facts")
                continue
            mem: Memory | None = None
            if d.action != "ADD":
                if d.memory_id is None or d.memory_id not in shown:
                    reject(d, f"memory id {d.memory_id} was not among the memories shown")
                    continue
                mem = shown[d.memory_id]
            want = "store" if d.action in ("ADD", "OUTDATE") else "absorb"
            if fate.get(d.fact, want) != want:
                reject(d, "conflicts with an earlier decision for the same fact", mem.id if mem else None)
                continue
            if mem is not None and d.action in ("UPDATE", "OUTDATE") and mem.id in targeted:
                reject(d, "this memory is already changed by another decision", mem.id)
                continue
            if d.action == "UPDATE":
                assert mem is not None
                merged = " ".join((d.content or "").split())[:1000]
                if not merged:
                    reject(d, "UPDATE without the merged text", mem.id)
                    continue
                if mem.status != "active":
                    reject(d, "cannot merge into an outdated memory", mem.id)
                    continue
                plan.updates[mem.id] = (d.fact, merged)
                targeted.add(mem.id)
                plan.absorbed.add(d.fact)
            elif d.action == "OUTDATE":
                assert mem is not None
                if mem.status != "active":
                    reject(d, "the memory is already outdated", mem.id)
                    continue
                plan.adds.setdefault(d.fact, []).append(mem.id)
                targeted.add(mem.id)
            elif d.action == "ADD":
                plan.adds.setdefault(d.fact, [])
            else:  # NONE
                plan.absorbed.add(d.fact)
            fate[d.fact] = want
            plan.reasons.setdefault(d.fact, d.reason)
            plan.decisions.append(Decision(fact=d.fact, action=d.action, memory_id=mem.id if mem else None,
                                           content=d.content if d.action == "UPDATE" else None, reason=d.reason))

    def _ops(
        self,
        facts: list[ExtractedFact],
        vectors: np.ndarray,
        plan: _Plan,
        messages: list[dict[str, Any]],
        result: PipelineResult,
        session_id: str | None,
    ) -> tuple[list[AddMemory | ChangeMemory], int]:
        sources = result.source_message_ids
        created = max((m["created_at"] for m in messages if isinstance(m.get("created_at"), datetime)), default=None)
        ops: list[AddMemory | ChangeMemory] = []
        for i, supersedes in sorted(plan.adds.items()):
            ops.append(AddMemory(
                content=facts[i].content, type=facts[i].type, embedding=vectors[i], actor="pipeline",
                reason=plan.reasons.get(i), source_message_ids=list(sources), source_session_id=session_id,
                supersedes=supersedes, created_at=created,
            ))
        calls = 0
        if plan.updates:
            ids = list(plan.updates)
            merged_vectors = self._embed([plan.updates[m][1] for m in ids])  # merged text needs its own vector
            calls = 1
            for mid, vec in zip(ids, merged_vectors, strict=True):
                fact, merged = plan.updates[mid]
                ops.append(ChangeMemory(memory_id=mid, content=merged, embedding=vec, event="UPDATE",
                                        actor="pipeline", reason=plan.reasons.get(fact),
                                        source_message_ids=list(sources)))
        return ops, calls
