"""Reflection: a second look at a user's stored memories that repairs what consolidation let through.

Memories are reviewed in small groups: a memory not reviewed since it last changed, with its closest active
neighbours (by cosine above a floor, and those with the same subject key). The model names the memories a later one
replaces (OUTDATE) and the duplicates to fold into one (MERGE); every answer is validated like a consolidation's
(shown ids only, one change per memory, a memory is replaced only by a later one) and each group is applied whole or
not at all, as a pipeline run of kind ``reflection``: the Timeline shows its diff and a person can undo it by hand.

It is resumable: a group's run records which memories it reviewed, and a memory is looked at again only once it has
changed since. Each group costs one LLM call, so a pass over ``n`` memories not reviewed yet costs at most ``n / 2``
calls (and ``max_groups`` bounds one pass).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from timemory._prompts import REFLECTION_PROMPT, REFLECTION_USER
from timemory._time import utc_now
from timemory.core._answers import answer_cap, fact_text, reflection_schema, request
from timemory.errors import ConcurrentUpdateError, TiMemoryError
from timemory.providers._llm import LLM, Usage
from timemory.schemas import (
    AppliedChange,
    Candidate,
    Decision,
    Memory,
    PipelineResult,
    ReflectionChange,
    ReflectionPlan,
    ReflectionReport,
)
from timemory.store import ChangeMemory, Store, save_run

log = logging.getLogger(__name__)

REFLECTION = "reflection"


@dataclass(frozen=True)
class ReflectionPolicy:
    group_size: int = 5  # memories shown to the model at once
    neighbour_floor: float = 0.3  # cosine a neighbour needs to join a memory's group
    max_groups: int | None = None  # LLM calls one pass may make at most
    # What an answer may change, so a weak model cannot retire an unrelated memory: a memory is replaced only by one
    # with its subject key, or of its type and at least this close; a duplicate is merged only when this close.
    outdate_floor: float | None = 0.4
    merge_floor: float | None = 0.6


@dataclass
class _Group:
    members: list[Memory]  # oldest first, as the model sees them
    scores: dict[str, float]  # cosine of each member to the memory the group was formed around
    vectors: dict[str, np.ndarray]  # each member's unit vector, for the cosine between any two of them


def plan_groups(memories: list[Memory], vectors: np.ndarray, reviewed: dict[str, datetime],
                since: datetime | None, policy: ReflectionPolicy) -> list[_Group]:
    """Disjoint groups around the memories that need a look, newest first; a memory with nothing close to it is
    left alone (there is nothing to compare it with)."""

    def needs_look(m: Memory) -> bool:
        seen = reviewed.get(m.id)
        return (since is None or m.updated_at >= since) and (seen is None or m.updated_at > seen)

    used: set[int] = set()
    groups = []
    order = sorted(range(len(memories)), key=lambda i: memories[i].updated_at, reverse=True)
    for seed in order:
        if seed in used or not needs_look(memories[seed]):
            continue
        cosine = vectors @ vectors[seed]
        near = [i for i in np.argsort(-cosine, kind="stable")
                if i != seed and i not in used and cosine[i] >= policy.neighbour_floor][: policy.group_size - 1]
        subject = memories[seed].subject
        if subject:
            same = [i for i, m in enumerate(memories) if m.subject == subject and i != seed and i not in used]
            near = list(dict.fromkeys(same[: policy.group_size - 1] + near))[: policy.group_size - 1]
        if not near:
            continue
        members = sorted([seed, *near], key=lambda i: (memories[i].created_at, memories[i].id))
        used.update(members)
        groups.append(_Group([memories[i] for i in members], {memories[i].id: float(cosine[i]) for i in members},
                             {memories[i].id: vectors[i] for i in members}))
    return groups


def refusal(old: Memory, by: Memory, action: str, cosine: float, policy: ReflectionPolicy) -> str | None:
    """Why ``by`` may not replace (or take in) ``old``, or None when it may."""
    if action == "OUTDATE":
        if old.subject is not None and old.subject == by.subject:
            return None
        if policy.outdate_floor is None:
            return None
        if old.type != by.type:
            return f"a {by.type} memory cannot replace a {old.type} memory without the same subject"
        if cosine < policy.outdate_floor:
            return f"too far apart to replace one another (cosine {cosine:.2f} < {policy.outdate_floor})"
        return None
    if policy.merge_floor is not None and cosine < policy.merge_floor:
        return f"too far apart to be duplicates (cosine {cosine:.2f} < {policy.merge_floor})"
    return None


def validate_changes(answer: ReflectionPlan, shown: dict[int, Memory], decisions: list[Decision],
                     guard: Callable[[Memory, Memory, str], str | None] = lambda old, by, action: None,
                     ) -> tuple[list[tuple[Memory, Memory, str]], list[tuple[Memory, Memory, str, str]]]:
    """(outdates, merges) that are safe to apply; everything else is recorded in ``decisions`` as rejected.
    ``guard`` says why a change between two shown memories may not be made (see :func:`refusal`)."""
    outdates: list[tuple[Memory, Memory, str]] = []
    merges: list[tuple[Memory, Memory, str, str]] = []
    retired: set[str] = set()
    kept: set[str] = set()
    merged_into: set[str] = set()

    def reject(c: ReflectionChange, why: str, memory_id: str | None = None) -> None:
        decisions.append(Decision(fact=0, action="OUTDATE" if c.action == "OUTDATE" else "UPDATE",
                                  memory_id=memory_id, reason=c.reason, accepted=False, rejected_because=why))

    for c in answer.changes:
        old, by = shown.get(c.memory_id), shown.get(c.by)
        if old is None or by is None:
            reject(c, f"memory id {c.memory_id if old is None else c.by} was not among the memories shown")
            continue
        if old.id == by.id:
            reject(c, "a memory cannot replace itself", old.id)
            continue
        if old.id in retired or old.id in kept or by.id in retired:
            reject(c, "conflicts with another change in this group", old.id)
            continue
        if c.action == "OUTDATE":
            if (by.created_at, by.id) <= (old.created_at, old.id):
                reject(c, "a memory can only be replaced by a later one", old.id)
                continue
            if (why := guard(old, by, c.action)) is not None:
                reject(c, why, old.id)
                continue
            outdates.append((old, by, c.reason))
            decisions.append(Decision(fact=0, action="OUTDATE", memory_id=old.id, reason=c.reason))
        else:
            merged = fact_text(c.content)
            if not merged:
                reject(c, "MERGE without the merged text", old.id)
                continue
            if (why := guard(old, by, c.action)) is not None:
                reject(c, why, old.id)
                continue
            if by.id in merged_into:  # its merged text would drop what the first duplicate added
                reject(c, "the memory to keep already takes in another duplicate", old.id)
                continue
            merged_into.add(by.id)
            merges.append((old, by, merged, c.reason))
            decisions.append(Decision(fact=0, action="UPDATE", memory_id=by.id, content=merged, reason=c.reason))
            decisions.append(Decision(fact=0, action="OUTDATE", memory_id=old.id, reason=f"merged: {c.reason}"))
        retired.add(old.id)
        kept.add(by.id)
    return outdates, merges


class Reflection:
    def __init__(self, store: Store, embed: Callable[[list[str]], np.ndarray], llm: LLM, embedding_model: str,
                 policy: ReflectionPolicy | None = None, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.store = store
        self.clock = clock
        self.embed = embed
        self.llm = llm
        self.embedding_model = embedding_model
        self.policy = policy or ReflectionPolicy()

    def reviewed(self, user_id: str) -> dict[str, datetime]:
        """When each memory was last reviewed by a reflection run that went through."""
        out: dict[str, datetime] = {}
        for run in self.store.runs.of_kind(user_id, REFLECTION):
            if run.status != "failed" and run.created_at is not None:
                for c in run.candidates:
                    out[c.memory_id] = max(out.get(c.memory_id, run.created_at), run.created_at)
        return out

    def run(self, user_id: str, *, since: datetime | None = None,
            keep_going: Callable[[], bool] = lambda: True) -> ReflectionReport:
        memories, vectors = self.store.memories.with_vectors(user_id, statuses=("active",))
        groups = plan_groups(memories, vectors, self.reviewed(user_id), since, self.policy)
        report = ReflectionReport(user_id=user_id, memories=len(memories), groups=len(groups))
        for group in groups[: self.policy.max_groups]:
            if not keep_going():
                report.stopped = True
                break
            result = self._group(user_id, group)
            report.runs.append(result.run_id)
            report.llm_calls += result.llm_calls
            report.prompt_tokens += result.prompt_tokens
            report.reviewed += len(group.members) if result.status != "failed" else 0
            report.outdated += sum(c.event == "OUTDATE" for c in result.changes)
            report.merged += sum(c.event == "UPDATE" for c in result.changes)
            report.failed += result.status == "failed"
        report.left = len(groups) - len(report.runs)
        return report

    def _group(self, user_id: str, group: _Group) -> PipelineResult:
        usage = Usage()
        started = time.perf_counter()
        version = self.store.users.version(user_id)
        shown = {i + 1: m for i, m in enumerate(group.members)}
        candidates = [Candidate(fact=0, short_id=sid, memory_id=m.id, content=m.content, type=m.type,
                                status=m.status, score=round(group.scores[m.id], 4), via="group")
                      for sid, m in shown.items()]
        decisions: list[Decision] = []
        changes: list[AppliedChange] = []
        errors: list[str] = []
        run_id = str(uuid.uuid4())
        status = "empty"
        # the run and its changes share one time, so what it changed counts as reviewed by it
        at = self.clock()
        try:
            current = self.store.memories.get_many(user_id, [m.id for m in group.members])
            if any(current.get(m.id) != m for m in group.members):
                raise ConcurrentUpdateError("These memories changed since the pass began; they are looked at next "
                                            "time.")
            lines = "\n".join(f"{sid}. [{m.type}, learnt {m.created_at.date().isoformat()}] {m.content}"
                              for sid, m in shown.items())
            schema = reflection_schema(list(shown))
            answer = self.llm.parse([{"role": "system", "content": REFLECTION_PROMPT},
                                     {"role": "user", "content": REFLECTION_USER.format(memories=lines)}],
                                    request(ReflectionPlan, schema), usage=usage, max_tokens=answer_cap(schema))
            outdates, merges = validate_changes(
                answer, shown, decisions, lambda old, by, action: refusal(
                    old, by, action, float(group.vectors[old.id] @ group.vectors[by.id]), self.policy))
            ops: list[ChangeMemory] = [
                ChangeMemory(memory_id=old.id, status="outdated", event="OUTDATE", actor="pipeline",
                             reason=reason, superseded_by=by.id, at=at) for old, by, reason in outdates]
            if merges:
                merged_vectors = self.embed([text for _, _, text, _ in merges])
                for (old, keep, text, reason), vector in zip(merges, merged_vectors, strict=True):
                    ops.append(ChangeMemory(memory_id=keep.id, content=text, embedding=vector, event="UPDATE",
                                            actor="pipeline", reason=reason, at=at))
                    ops.append(ChangeMemory(memory_id=old.id, status="outdated", event="OUTDATE",
                                            actor="pipeline", reason=f"merged into another memory: {reason}",
                                            superseded_by=keep.id, at=at))
            if ops:
                changes = self.store.memories.apply(user_id, ops, expected_version=version, run_id=run_id)
                status = "ok"
        except TiMemoryError as exc:
            status = "failed"
            errors.append(f"{exc.code}: {exc}")
            log.warning("reflection run %s failed: %s", run_id, exc)
        result = PipelineResult(
            run_id=run_id, user_id=user_id, kind="reflection", status=status,  # type: ignore[arg-type]
            candidates=candidates, decisions=decisions, changes=changes, errors=errors, llm_calls=usage.calls,
            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
            timings={"reflect": round(time.perf_counter() - started, 6)}, llm_model=getattr(self.llm, "model", None),
            embedding_model=self.embedding_model, created_at=at, answer_keys=usage.answer_keys,
        )
        return save_run(self.store, result)
