"""The memory pipeline for one exchange:

extract (1 LLM call) → embed facts (1 batched call) → the memories each fact may change (``candidates``) →
consolidate (1 LLM call, skipped when there are none) → apply everything in one transaction (re-planned if another
writer got there first).

Each stage returns what it made; :meth:`Pipeline.run` keeps it in a :class:`Progress` (so a failed run still shows
how far it got) and builds the :class:`PipelineResult` in one place.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np

from timemory.core._candidates import CandidatePolicy, find_candidates
from timemory.core._consolidation import WritePlan, number_candidates, plan_consolidation
from timemory.core._extraction import PROMPT_MESSAGE_CHARS, extract_facts
from timemory.errors import ConcurrentUpdateError, TiMemoryError
from timemory.providers._llm import LLM, Usage
from timemory.schemas import (
    AppliedChange,
    Candidate,
    Decision,
    ExtractedFact,
    JobLease,
    Message,
    PipelineResult,
    Provenance,
)
from timemory.search import Search
from timemory.store import AddMemory, ChangeMemory, Store, save_run

log = logging.getLogger(__name__)

MAX_PLAN_ATTEMPTS = 3
RunStatus = Literal["ok", "failed", "empty"]


@dataclass
class Progress:
    """What a run has made so far; what the record shows even when a later stage fails."""

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


@dataclass(frozen=True)
class Pipeline:
    """The stages over the backends they need (given by the engine, which the pipeline never calls back)."""

    store: Store
    search: Search
    embed: Callable[[list[str]], np.ndarray]  # unit vectors, one row per text
    embedding_model: str
    candidates: CandidatePolicy
    clock: Callable[[], datetime]

    def run(self, llm: LLM, messages: Sequence[Message], *, user_id: str, session_id: str | None,
            dated: datetime | None = None, lease: JobLease | None = None) -> PipelineResult:
        """Learn from stored, checked ``messages`` and save the run's record. ``dated`` is the time the caller gave
        the messages (a replayed exchange is dated like them; None: now). Model or database failures end the run
        as ``failed`` with the reason in its errors; nothing of a failed run is applied."""
        run = _Run(self, llm, list(messages), user_id, session_id, dated, lease)
        status: RunStatus = "ok"
        try:
            status = run.stages()
        except TiMemoryError as exc:
            status = "failed"
            run.progress.errors.append(f"{exc.code}: {exc}")
            log.warning("pipeline run %s failed: %s", run.run_id, exc)
        progress = run.progress
        result = PipelineResult(
            run_id=run.run_id, user_id=user_id, session_id=session_id, status=status, facts=progress.facts,
            candidates=progress.candidates, decisions=progress.decisions, changes=progress.changes,
            errors=progress.errors, llm_calls=progress.usage.calls, embedding_calls=progress.embedding_calls,
            prompt_tokens=progress.usage.prompt_tokens, completion_tokens=progress.usage.completion_tokens,
            timings=progress.timings, source_message_ids=run.sources, llm_model=getattr(llm, "model", None),
            embedding_model=self.embedding_model, answer_keys=progress.usage.answer_keys,
            # a replayed exchange's run is dated like its messages, so the timeline places it where it happened
            created_at=dated or self.clock(),
        )
        return save_run(self.store, result)


@dataclass
class _Run:
    """One run's inputs and what it has made so far."""

    pipeline: Pipeline
    llm: LLM
    messages: list[Message]
    user_id: str
    session_id: str | None
    dated: datetime | None
    lease: JobLease | None
    progress: Progress = field(default_factory=Progress)
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def sources(self) -> list[str]:
        return [m.id for m in self.messages]

    def read(self) -> list[Message]:
        """What extraction reads: the exchange, or only the user's lines for a model that does not read replies
        (``reads_replies = False``: the bundled 135M model learns less from a statement with a reply beside it)."""
        if getattr(self.llm, "reads_replies", True):
            return self.messages
        return [m for m in self.messages if m.role == "user"] or self.messages

    def stages(self) -> RunStatus:
        p, progress = self.pipeline, self.progress
        with progress.stage("extract"):
            today = (self.dated or p.clock()).date()
            progress.facts = facts = extract_facts(self.llm, self.read(), today, progress.usage)
        if not facts:
            return "empty"
        # a run over more than one exchange (a whole session) embeds its user messages with the facts (one call),
        # to link each fact to the messages it came from
        said = [m for m in self.messages if m.role == "user"]
        said = said if len(said) > 1 else []
        with progress.stage("embed"):
            embedded = p.embed([f.content for f in facts] + [m.content[:PROMPT_MESSAGE_CHARS] for m in said])
        progress.embedding_calls += 1
        vectors = embedded[:len(facts)]
        origins = origins_of(vectors, embedded[len(facts):], [m.id for m in said], self.sources)
        for attempt in range(1, MAX_PLAN_ATTEMPTS + 1):
            version = p.store.users.version(self.user_id)
            with progress.stage("search"):
                similar = find_candidates(p.search, p.store, p.candidates, self.user_id, facts, vectors, version)
            short_ids, progress.candidates = number_candidates(similar)
            with progress.stage("consolidate"):
                plan = plan_consolidation(self.llm, facts, progress.candidates, short_ids, progress.usage)
            progress.decisions = plan.decisions
            try:
                with progress.stage("apply"):
                    ops = self.operations(facts, vectors, plan, origins)
                    progress.changes = p.store.memories.apply(self.user_id, ops, expected_version=version,
                                                              run_id=self.run_id, lease=self.lease)
                return "ok"
            except ConcurrentUpdateError:
                if attempt == MAX_PLAN_ATTEMPTS:
                    raise
                progress.errors.append(f"attempt {attempt}: another writer changed these memories; planned again")
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def operations(self, facts: list[ExtractedFact], vectors: np.ndarray, plan: WritePlan,
                   origins: list[tuple[list[str], Provenance]]) -> list[AddMemory | ChangeMemory]:
        """The plan as store operations; merged texts get their own vectors (one batched call)."""
        ops: list[AddMemory | ChangeMemory] = []
        for i, supersedes in sorted(plan.adds.items()):
            sources, provenance = origins[i]
            ops.append(AddMemory(
                content=facts[i].content, type=facts[i].type, embedding=vectors[i], actor="pipeline",
                reason=plan.reasons.get(i), source_message_ids=sources, source_session_id=self.session_id,
                supersedes=supersedes, created_at=self.dated, subject=facts[i].subject, provenance=provenance,
            ))
        if plan.updates:
            ids = list(plan.updates)
            merged_vectors = self.pipeline.embed([plan.updates[m][1] for m in ids])
            self.progress.embedding_calls += 1
            for mid, vec in zip(ids, merged_vectors, strict=True):
                fact, merged = plan.updates[mid]
                sources, provenance = origins[fact]
                ops.append(ChangeMemory(memory_id=mid, content=merged, embedding=vec, event="UPDATE",
                                        actor="pipeline", reason=plan.reasons.get(fact), source_message_ids=sources,
                                        at=self.dated, provenance=provenance))
        return ops


MESSAGE_FLOOR = 0.3  # a user message this close to a fact (cosine) may be where it came from
MESSAGE_MARGIN = 0.05  # messages within this of the closest one count too (a fact told over two turns)


def origins_of(facts: np.ndarray, said: np.ndarray, said_ids: list[str],
               sources: list[str]) -> list[tuple[list[str], Provenance]]:
    """The messages each fact was learnt from. An exchange: its messages. A run over a whole session: the user
    messages closest in meaning to the fact (within :data:`MESSAGE_MARGIN` of the closest, at least
    :data:`MESSAGE_FLOOR`); when none is that close, every message of the run, and its provenance is only the
    session."""
    if not said_ids:
        return [(list(sources), "turns") for _ in range(len(facts))]
    out: list[tuple[list[str], Provenance]] = []
    for closeness in facts @ said.T:
        best = float(closeness.max())
        near = [said_ids[j] for j in np.flatnonzero(closeness >= best - MESSAGE_MARGIN)]
        out.append((near, "turns") if best >= MESSAGE_FLOOR else (list(sources), "session"))
    return out
