"""The memory pipeline for one exchange:

extract (1 LLM call) → embed facts (1 batched call) → the memories each fact may change (``candidates``) →
consolidate (1 LLM call, skipped when there are none) → apply everything in one transaction (re-planned if another
writer got there first).

Each stage returns what it made; :func:`run_pipeline` keeps it in a :class:`Progress` (so a failed run still shows
how far it got) and builds the :class:`PipelineResult` in one place.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol

import numpy as np

from timemory.core.candidates import CandidatePolicy, candidate_memories
from timemory.core.consolidation import Plan, find_candidates, plan_consolidation
from timemory.core.extraction import PROMPT_MESSAGE_CHARS, extract_facts
from timemory.errors import ConcurrentUpdateError, TiMemoryError
from timemory.providers.embeddings import Embedder
from timemory.providers.llm import LLM, Usage
from timemory.schemas import AppliedChange, Candidate, Decision, ExtractedFact, JobLease, PipelineResult, Provenance
from timemory.search import Search
from timemory.store import AddMemory, ChangeMemory, Store

log = logging.getLogger(__name__)

MAX_PLAN_ATTEMPTS = 3
RunStatus = Literal["ok", "failed", "empty"]


class Engine(Protocol):
    """What the pipeline needs of the engine."""

    store: Store
    search_index: Search
    embedder: Embedder
    candidates: CandidatePolicy

    def today(self) -> date: ...

    def embed_checked(self, texts: list[str]) -> np.ndarray: ...


@dataclass
class Progress:
    """What a run has made so far; what the trace shows even when a later stage fails."""

    facts: list[ExtractedFact] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    changes: list[AppliedChange] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    embedding_calls: int = 0
    usage: Usage = field(default_factory=Usage)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Add the time spent in the block to the stage's total (also when it raises)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - started, 6)


def _dated(messages: list[dict[str, Any]]) -> datetime | None:
    """The time of the latest dated message: a replayed exchange is dated like its messages."""
    return max((m["created_at"] for m in messages if isinstance(m.get("created_at"), datetime)), default=None)


def run_pipeline(engine: Engine, llm: LLM, messages: list[dict[str, Any]], *, user_id: str,
                 session_id: str | None, lease: JobLease | None = None) -> PipelineResult:
    """Learn from checked ``messages``: save them, run the stages, save the trace. Model or database failures end
    the run as ``failed`` with the reason in its errors; nothing of a failed run is applied."""
    saved = engine.store.conversations.save_messages(user_id, session_id, messages)
    sources = [m.id for m in saved]
    dated = _dated(messages)
    progress = Progress()
    status: RunStatus = "ok"
    run_id = str(uuid.uuid4())
    try:
        status = _stages(engine, llm, progress, messages, dated, user_id, session_id, sources, run_id, lease)
    except TiMemoryError as exc:
        status = "failed"
        progress.errors.append(f"{exc.code}: {exc}")
        log.warning("pipeline run %s failed: %s", run_id, exc)
    result = PipelineResult(
        run_id=run_id, user_id=user_id, session_id=session_id, status=status, facts=progress.facts,
        candidates=progress.candidates, decisions=progress.decisions, changes=progress.changes,
        errors=progress.errors, llm_calls=progress.usage.calls, embedding_calls=progress.embedding_calls,
        prompt_tokens=progress.usage.prompt_tokens, completion_tokens=progress.usage.completion_tokens,
        timings=progress.timings, source_message_ids=sources, llm_model=getattr(llm, "model", None),
        embedding_model=engine.embedder.name, answer_keys=progress.usage.answer_keys,
        # a replayed exchange's run is dated like its messages, so the timeline places it where it happened
        created_at=dated or datetime.now(UTC),
    )
    try:
        engine.store.runs.save(result)
    except TiMemoryError as exc:
        result.errors.append(f"the trace could not be saved: {exc}")
    return result


def _stages(engine: Engine, llm: LLM, progress: Progress, messages: list[dict[str, Any]], dated: datetime | None,
            user_id: str, session_id: str | None, sources: list[str], run_id: str, lease: JobLease | None) -> RunStatus:
    with progress.stage("extract"):
        progress.facts = facts = extract_facts(llm, messages, dated.date() if dated else engine.today(),
                                               progress.usage)
    if not facts:
        return "empty"
    # a run over more than one exchange (a whole session) embeds its user messages with the facts (one call), to link
    # each fact to the turns it came from
    turns = [i for i, m in enumerate(messages) if m["role"] == "user"]
    turns = turns if len(turns) > 1 else []
    with progress.stage("embed"):
        embedded = engine.embed_checked([f.content for f in facts]
                                        + [messages[i]["content"][:PROMPT_MESSAGE_CHARS] for i in turns])
    progress.embedding_calls += 1
    vectors = embedded[:len(facts)]
    origins = origins_of(vectors, embedded[len(facts):], [sources[i] for i in turns], sources)
    for attempt in range(1, MAX_PLAN_ATTEMPTS + 1):
        version = engine.store.users.version(user_id)
        with progress.stage("search"):
            similar = candidate_memories(engine, engine.candidates, user_id, facts, vectors, version)
        short_ids, progress.candidates = find_candidates(similar)
        with progress.stage("consolidate"):
            plan = plan_consolidation(llm, facts, progress.candidates, short_ids, progress.usage)
        progress.decisions = plan.decisions
        try:
            with progress.stage("apply"):
                ops = _operations(engine, progress, facts, vectors, plan, origins, session_id, dated)
                progress.changes = engine.store.memories.apply(user_id, ops, expected_version=version,
                                                               run_id=run_id, lease=lease)
            return "ok"
        except ConcurrentUpdateError:
            if attempt == MAX_PLAN_ATTEMPTS:
                raise
            progress.errors.append(f"attempt {attempt}: another writer changed these memories; planned again")
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _operations(engine: Engine, progress: Progress, facts: list[ExtractedFact], vectors: np.ndarray, plan: Plan,
                origins: list[tuple[list[str], Provenance]], session_id: str | None,
                created: datetime | None) -> list[AddMemory | ChangeMemory]:
    """The plan as store operations; merged texts get their own vectors (one batched call)."""
    ops: list[AddMemory | ChangeMemory] = []
    for i, supersedes in sorted(plan.adds.items()):
        sources, provenance = origins[i]
        ops.append(AddMemory(
            content=facts[i].content, type=facts[i].type, embedding=vectors[i], actor="pipeline",
            reason=plan.reasons.get(i), source_message_ids=sources, source_session_id=session_id,
            supersedes=supersedes, created_at=created, subject=facts[i].subject, provenance=provenance,
        ))
    if plan.updates:
        ids = list(plan.updates)
        merged_vectors = engine.embed_checked([plan.updates[m][1] for m in ids])
        progress.embedding_calls += 1
        for mid, vec in zip(ids, merged_vectors, strict=True):
            fact, merged = plan.updates[mid]
            sources, provenance = origins[fact]
            ops.append(ChangeMemory(memory_id=mid, content=merged, embedding=vec, event="UPDATE",
                                    actor="pipeline", reason=plan.reasons.get(fact), source_message_ids=sources,
                                    at=created, provenance=provenance))
    return ops


TURN_FLOOR = 0.3  # a user message this close to a fact (cosine) may be where it came from
TURN_MARGIN = 0.05  # messages within this of the closest one count too (a fact told over two turns)


def origins_of(facts: np.ndarray, turns: np.ndarray, turn_ids: list[str],
               sources: list[str]) -> list[tuple[list[str], Provenance]]:
    """The messages each fact was learnt from. An exchange: its messages. A run over a whole session: the user
    messages closest in meaning to the fact (within :data:`TURN_MARGIN` of the closest, at least
    :data:`TURN_FLOOR`); when none is that close, every message of the run, and its provenance is only the session."""
    if not turn_ids:
        return [(list(sources), "turns") for _ in range(len(facts))]
    out: list[tuple[list[str], Provenance]] = []
    for closeness in facts @ turns.T:
        best = float(closeness.max())
        near = [turn_ids[j] for j in np.flatnonzero(closeness >= best - TURN_MARGIN)]
        out.append((near, "turns") if best >= TURN_FLOOR else (list(sources), "session"))
    return out
