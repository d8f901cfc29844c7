"""Consolidation: which stored memories each new fact resembles, and turning the model's decisions about them
into a safe plan. Existing memories are shown to the model with short integer ids that are mapped back here; any
decision naming an id that was not shown, or contradicting another decision, is rejected and reported, never applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from timemory._prompts import MEMORY_CONSOLIDATION_PROMPT, MEMORY_CONSOLIDATION_USER
from timemory.core._answers import answer_cap, consolidation_schema, fact_text, request
from timemory.core._candidates import Via
from timemory.providers._llm import LLM, Usage
from timemory.schemas import Candidate, ConsolidationPlan, Decision, ExtractedFact, Memory


def normalise_text(text: str) -> str:
    """Case, spacing and a final full stop do not make two facts different."""
    return " ".join(text.lower().split()).rstrip(".!")


@dataclass
class WritePlan:
    """What the pipeline will write, built from the model's decisions after validation."""

    adds: dict[int, list[str]] = field(default_factory=dict)  # fact index -> memory ids it supersedes
    updates: dict[str, tuple[int, str]] = field(default_factory=dict)  # memory id -> (fact, merged text)
    reasons: dict[int, str] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    absorbed: set[int] = field(default_factory=set)  # facts already known or merged into a memory


def number_candidates(
    similar: list[list[tuple[Memory, float, Via]]],
) -> tuple[dict[int, Memory], list[Candidate]]:
    """Short ids for the memories shown (one per memory, however many facts bring it) and the candidates."""
    short_ids: dict[int, Memory] = {}
    by_memory: dict[str, int] = {}
    candidates: list[Candidate] = []
    for fact_index, hits in enumerate(similar):
        for mem, score, via in hits:
            if mem.id not in by_memory:
                by_memory[mem.id] = len(short_ids) + 1
                short_ids[by_memory[mem.id]] = mem
            candidates.append(
                Candidate(fact=fact_index, short_id=by_memory[mem.id], memory_id=mem.id, content=mem.content,
                          type=mem.type, status=mem.status, score=round(score, 4), via=via)
            )
    return short_ids, candidates


def plan_consolidation(
    llm: LLM,
    facts: list[ExtractedFact],
    candidates: list[Candidate],
    short_ids: dict[int, Memory],
    usage: Usage,
) -> WritePlan:
    """Decide for every fact; the model is asked only about facts that resemble something stored."""
    plan = WritePlan()
    with_candidates = sorted({c.fact for c in candidates})
    # An exact restatement of an active memory needs no model.
    active_text = {normalise_text(c.content): c for c in candidates if c.status == "active"}
    to_ask: list[int] = []
    for i in with_candidates:
        known = active_text.get(normalise_text(facts[i].content))
        if known is not None:
            plan.absorbed.add(i)
            plan.decisions.append(Decision(fact=i, action="NONE", memory_id=known.memory_id,
                                           reason="same text as an existing memory"))
        else:
            to_ask.append(i)
    if to_ask:
        _ask_model(llm, facts, to_ask, candidates, short_ids, usage, plan)
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
    llm: LLM,
    facts: list[ExtractedFact],
    to_ask: list[int],
    candidates: list[Candidate],
    short_ids: dict[int, Memory],
    usage: Usage,
    plan: WritePlan,
) -> None:
    shown = sorted({c.short_id for c in candidates if c.fact in to_ask})
    fact_lines = "\n".join(f"{i}. [{facts[i].type}] {facts[i].content}" for i in to_ask)
    memory_lines = "\n".join(
        f"{sid}. [{short_ids[sid].type}, {short_ids[sid].status}] {short_ids[sid].content}" for sid in shown
    )
    schema = consolidation_schema(to_ask, shown)
    answer = llm.parse(
        [
            {"role": "system", "content": MEMORY_CONSOLIDATION_PROMPT},
            {"role": "user", "content": MEMORY_CONSOLIDATION_USER.format(facts=fact_lines, memories=memory_lines)},
        ],
        request(ConsolidationPlan, schema),
        usage=usage,
        max_tokens=answer_cap(schema),
    )
    validate_decisions(answer, set(to_ask), {sid: short_ids[sid] for sid in shown}, plan)


def consolidation_cap(facts: int, shown: int) -> int:
    """The answer cap of a consolidation asking about ``facts`` facts with ``shown`` memories (short ids 1…shown)."""
    return answer_cap(consolidation_schema(range(facts), range(1, shown + 1)))


def validate_decisions(
    answer: ConsolidationPlan,
    asked: set[int],
    shown: dict[int, Memory],
    plan: WritePlan,
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
            merged = fact_text(d.content)
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
