"""Evaluation: evidence recall@k of a replayed dataset, and why each question was missed (no LLM needed; an LLM can
also answer and grade)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from timemory.core.engine import DEFAULT_SEARCH_MODE, DEFAULT_SEARCH_SCOPE, merged
from timemory.errors import TiMemoryError, ValidationError
from timemory.facade import TiMem
from timemory.lab.datasets import Conversation, Dataset
from timemory.lab.replay import replay_counts, user_ids
from timemory.prompts import ANSWER_PROMPT, JUDGE_PROMPT
from timemory.providers.llm import LLM
from timemory.schemas import SEARCH_SCOPES, Judgement, Memory, SearchHit, SearchMode, SearchScope
from timemory.validation import check_search_scope

ATTRIBUTION_K = 5
ATTRIBUTIONS = ("hit", "extraction_miss_recovered", "session_hit", "retrieval_miss", "extraction_miss")


def attribute(question: dict[str, Any], k: int) -> str:
    """Why a scored question was missed at ``k``: ``hit`` (found in the top k), ``extraction_miss_recovered`` (found
    only because an evidence message itself is in the top k, and no memory was learnt from the evidence),
    ``session_hit`` (only a memory whose provenance is the whole session of the evidence is in the top k: it may or
    may not come from the evidence), ``retrieval_miss`` (a memory learnt from the evidence exists but ranked lower)
    or ``extraction_miss`` (no memory is known to have been learnt from it)."""
    if question["hit_at"][str(k)]:
        return "hit" if question["evidence_learnt"] else "extraction_miss_recovered"
    if question.get("session_hit_at", {}).get(str(k)):
        return "session_hit"
    return "retrieval_miss" if question["evidence_learnt"] else "extraction_miss"


def from_evidence(memory: Memory, evidence: set[str]) -> bool:
    """Learnt from an evidence message, as far as its provenance tells: a memory whose provenance is only the session
    it was learnt in is linked to every message of that session, so it does not count."""
    return memory.provenance != "session" and bool(evidence & set(memory.source_message_ids))


def session_link(memory: Memory, evidence: set[str]) -> bool:
    return memory.provenance == "session" and bool(evidence & set(memory.source_message_ids))


def evidence_hit(hit: SearchHit, evidence: set[str]) -> bool:
    """A memory learnt from the evidence (:func:`from_evidence`), or an evidence message itself."""
    if hit.memory is not None:
        return from_evidence(hit.memory, evidence)
    return hit.episode is not None and hit.episode.message_id in evidence


def searched_by_scope(tm: TiMem, question: str, users: Sequence[str], top: int,
                      mode: SearchMode) -> dict[str, list[SearchHit]]:
    """The top hits of each scope over the users of one conversation: memories and episodes searched once each, and
    "all" merged from them as ``tm.search`` merges."""
    def best(scope: SearchScope) -> list[SearchHit]:
        return sorted((h for u in users for h in tm.search(question, user_id=u, limit=top, mode=mode, scope=scope)),
                      key=lambda h: -h.score)[:top]
    memories, episodes = best("memories"), best("episodes")
    return {"memories": memories, "episodes": episodes, "all": merged(memories, episodes, top)}


def evaluate(tm: TiMem, dataset: Dataset, *, user_prefix: str, ks: Sequence[int] = (1, 5, 10),
             answer_with: LLM | None = None, judge: LLM | None = None,
             mode: SearchMode = DEFAULT_SEARCH_MODE, attribution_k: int = ATTRIBUTION_K,
             scope: SearchScope = DEFAULT_SEARCH_SCOPE) -> dict[str, Any]:
    """Evidence recall@k and failure attribution per question, overall and per category (no LLM needed).

    A question is a hit at k when one of the top-k results of ``search`` (the users' own search, in ``mode`` and
    ``scope``) is a memory learnt from an evidence message (:func:`from_evidence`) or, with episodes in scope, an
    evidence message itself; one that only a session-wide memory links to is a ``session_hit`` at k, reported apart
    and never counted in ``recall_at``. ``recall_by_scope`` gives recall@k of every scope on the same questions.
    Misses are attributed at ``attribution_k`` (added to ``ks``): an *extraction miss* when no memory of the
    conversation's users was learnt from the evidence at all, else a *retrieval miss*; a question found only by an
    evidence message is an *extraction miss recovered*. Each question also records its *distractors*: the memories
    searched that were not learnt from its evidence (finding it among 3 memories says little; among 3,000, much).
    """
    scope = check_search_scope(scope)
    ks = sorted({int(k) for k in (*ks, attribution_k)})
    if not ks or ks[0] < 1:
        raise ValidationError("k must be a list of positive integers.")
    top = ks[-1]
    groups: dict[str, list[Conversation]] = {}
    for conv in dataset.conversations:
        groups.setdefault(conv.group, []).append(conv)
    all_memories: dict[str, list[Memory]] = {}
    for uid in user_ids(dataset, user_prefix):
        all_memories[uid] = tm.list_memories(user_id=uid, limit=1_000_000)
    questions_out = []
    for convs in groups.values():
        users = [dataset.user_id(user_prefix, c) for c in convs]
        searched = [m for u in users for m in all_memories[u] if m.status == "active"]  # what each question is among
        for q in convs[0].questions:
            if not q.evidence:
                continue  # nothing to find (e.g. adversarial questions): not scored
            evidence = set(q.evidence)
            by_scope = searched_by_scope(tm, q.question, users, top, mode)
            hits = by_scope[scope]
            found = [evidence_hit(h, evidence) for h in hits]
            via_session = [h.memory is not None and session_link(h.memory, evidence) for h in hits]
            out: dict[str, Any] = {
                "id": q.id, "question": q.question, "answer": q.answer, "category": q.category,
                "evidence": q.evidence, "hit_at": {str(k): any(found[:k]) for k in ks},
                "hit_at_by_scope": {name: {str(k): any(evidence_hit(h, evidence) for h in found_hits[:k])
                                           for k in ks} for name, found_hits in by_scope.items()},
                "session_hit_at": {str(k): any(via_session[:k]) and not any(found[:k]) for k in ks},
                "evidence_learnt": any(from_evidence(m, evidence) for u in users for m in all_memories[u]),
                "distractors": sum(not from_evidence(m, evidence) for m in searched),
                "retrieved": [{"kind": h.kind, "memory_id": h.id, "user_id": h.user_id, "content": h.text,
                               "score": round(h.score, 4), "evidence_hit": f, "session_hit": v}
                              for h, f, v in zip(hits, found, via_session, strict=True)],
            }
            if q.old_evidence:
                out["update"] = update_outcome(q.latest_evidence, q.old_evidence, hits, ks,
                                               [m for u in users for m in all_memories[u]])
                out["old_evidence"] = q.old_evidence
            out["attribution"] = attribute(out, attribution_k)
            questions_out.append(out)
    memories = sum(len(v) for v in all_memories.values())
    turns = sum(c.turn_count for c in dataset.conversations)
    result: dict[str, Any] = {**scores(questions_out, ks, attribution_k), "search_mode": mode, "search_scope": scope,
                              "recall_by_scope": recall_by_scope(questions_out, ks), "per_category": {}}
    updates = [q["update"] for q in questions_out if "update" in q]
    if updates:
        result["stale"] = stale_scores(updates, ks)
    for category in sorted({str(q["category"]) for q in questions_out}):
        result["per_category"][category] = scores([q for q in questions_out if q["category"] == category], ks,
                                                  attribution_k)
    counts = replay_counts(tm, dataset, user_prefix)
    result["memories"] = {"total": memories, "active": sum(m.status == "active" for v in all_memories.values()
                                                          for m in v),
                          "per_100_turns": round(100 * memories / turns, 2) if turns else 0.0}
    result["cost"] = {"llm_calls_per_exchange": counts["llm_calls_per_run"],
                      "tokens_per_exchange": counts["tokens_per_run"], "runs": counts["runs"]}
    result["questions"] = questions_out
    if answer_with is not None:
        result["answer_accuracy"] = answer_and_grade(questions_out, answer_with, judge or answer_with)
    return result


def answer_and_grade(questions: list[dict[str, Any]], answer_with: LLM, judge: LLM) -> dict[str, Any]:
    """Answer each question from its retrieved memories, and have ``judge`` grade it against the gold answer.

    Only as meaningful as the models: with a small local model the figure says little."""
    for q in questions:
        memories = "\n".join(f"- {r['content']}" for r in q["retrieved"]) or "(none)"
        try:
            answer = "".join(answer_with.stream([{"role": "user", "content": ANSWER_PROMPT.format(
                memories=memories, question=q["question"])}])).strip()
            verdict = judge.parse([{"role": "user", "content": JUDGE_PROMPT.format(
                question=q["question"], gold=q["answer"], answer=answer)}], Judgement, max_tokens=256)
            q["model_answer"], q["correct"], q["judge_reason"] = answer, verdict.correct, verdict.reason
        except TiMemoryError as exc:
            q["model_answer"], q["correct"], q["judge_reason"] = None, None, f"failed: {exc}"
    graded = [q for q in questions if q.get("correct") is not None]
    per_category: dict[str, float] = {}
    for category in sorted({str(q["category"]) for q in graded}):
        mine = [q for q in graded if str(q["category"]) == category]
        per_category[category] = round(sum(q["correct"] for q in mine) / len(mine), 4)
    return {
        "accuracy": round(sum(q["correct"] for q in graded) / len(graded), 4) if graded else None,
        "graded": len(graded), "failed": len(questions) - len(graded), "per_category": per_category,
        "answer_model": answer_with.model, "judge_model": judge.model,
        "note": "LLM-judged; only meaningful with a capable answer and judge model.",
    }


def update_outcome(latest: Sequence[str], old: Sequence[str], hits: Sequence[SearchHit], ks: Sequence[int],
                   memories: Sequence[Memory]) -> dict[str, Any]:
    """For a question about something that changed: whether the top k holds a memory of the latest statement, and
    whether it holds a stale one (learnt from the replaced statement and not from the latest, yet still active);
    and whether such a stale memory is active at all."""
    latest_ids, old_ids = set(latest), set(old)

    def stale(m: Memory) -> bool:
        sources = set(m.source_message_ids)
        return m.status == "active" and bool(sources & old_ids) and not sources & latest_ids

    def names_latest(h: SearchHit) -> bool:
        sources = h.memory.source_message_ids if h.memory else [h.episode.message_id] if h.episode else []
        return bool(latest_ids & set(sources))

    return {"latest_at": {str(k): any(names_latest(h) for h in hits[:k]) for k in ks},
            "stale_at": {str(k): any(h.memory is not None and stale(h.memory) for h in hits[:k]) for k in ks},
            "stale_active": any(stale(m) for m in memories)}


def stale_scores(updates: list[dict[str, Any]], ks: Sequence[int]) -> dict[str, Any]:
    """Over the questions about something that changed: the share whose top k holds the latest statement, the share
    whose top k returns a stale memory, and the share with a stale memory still active."""
    n = len(updates)
    return {"questions": n,
            "latest_found_at": {str(k): round(sum(u["latest_at"][str(k)] for u in updates) / n, 4) for k in ks},
            "stale_returned_at": {str(k): round(sum(u["stale_at"][str(k)] for u in updates) / n, 4) for k in ks},
            "stale_active": round(sum(u["stale_active"] for u in updates) / n, 4)}


def recall_by_scope(questions: list[dict[str, Any]], ks: Sequence[int]) -> dict[str, dict[str, float]]:
    """Recall@k of each scope over the same scored questions."""
    n = len(questions)
    return {scope: {str(k): round(sum(q["hit_at_by_scope"][scope][str(k)] for q in questions) / n, 4) if n else 0.0
                    for k in ks} for scope in SEARCH_SCOPES}


def scores(questions: list[dict[str, Any]], ks: Sequence[int], attribution_k: int) -> dict[str, Any]:
    n = len(questions)
    distractors = sorted(q["distractors"] for q in questions)
    return {
        "scored_questions": n,
        "recall_at": {str(k): round(sum(q["hit_at"][str(k)] for q in questions) / n, 4) if n else 0.0 for k in ks},
        "session_hit_at": {str(k): round(sum(q.get("session_hit_at", {}).get(str(k), False) for q in questions) / n,
                                         4) if n else 0.0 for k in ks},
        "attribution_k": attribution_k,
        "attribution": {a: sum(attribute(q, attribution_k) == a for q in questions) for a in ATTRIBUTIONS},
        "distractors": {"min": distractors[0], "median": distractors[n // 2]} if n else {"min": 0, "median": 0},
    }
