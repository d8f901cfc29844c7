"""Evaluation: evidence recall@k of a replayed dataset, and why each question was missed (no LLM needed; an LLM can
also answer and grade)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from timemory.core.engine import DEFAULT_SEARCH_MODE
from timemory.errors import TiMemoryError, ValidationError
from timemory.facade import TiMem
from timemory.lab.datasets import Conversation, Dataset
from timemory.lab.replay import replay_counts, user_ids
from timemory.prompts import ANSWER_PROMPT, JUDGE_PROMPT
from timemory.providers.llm import LLM
from timemory.schemas import Judgement, Memory, SearchHit, SearchMode


def evaluate(tm: TiMem, dataset: Dataset, *, user_prefix: str, ks: Sequence[int] = (1, 5, 10),
             answer_with: LLM | None = None, judge: LLM | None = None,
             mode: SearchMode = DEFAULT_SEARCH_MODE) -> dict[str, Any]:
    """Evidence recall@k and failure attribution per question, overall and per category (no LLM needed).

    A question is a hit at k when one of the top-k memories found by ``search`` (the users' own search, in ``mode``)
    was learnt from an evidence message. At the largest k, a miss is an *extraction miss* when no memory
    of the conversation's users was learnt from the evidence at all, else a *retrieval miss*.
    """
    ks = sorted({int(k) for k in ks})
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
        for q in convs[0].questions:
            if not q.evidence:
                continue  # nothing to find (e.g. adversarial questions): not scored
            evidence = set(q.evidence)
            hits = sorted((h for u in users for h in tm.search(q.question, user_id=u, limit=top, mode=mode)),
                          key=lambda h: -h.score)[:top]
            found = [bool(evidence & set(h.memory.source_message_ids)) for h in hits]
            hit_at = {str(k): any(found[:k]) for k in ks}
            if hit_at[str(top)]:
                attribution = "hit"
            elif any(evidence & set(m.source_message_ids) for u in users for m in all_memories[u]):
                attribution = "retrieval_miss"
            else:
                attribution = "extraction_miss"
            out: dict[str, Any] = {
                "id": q.id, "question": q.question, "answer": q.answer, "category": q.category,
                "evidence": q.evidence, "hit_at": hit_at, "attribution": attribution,
                "retrieved": [{"memory_id": h.memory.id, "user_id": h.memory.user_id, "content": h.memory.content,
                               "score": round(h.score, 4), "evidence_hit": f}
                              for h, f in zip(hits, found, strict=True)],
            }
            if q.old_evidence:
                out["update"] = update_outcome(q.latest_evidence, q.old_evidence, hits, ks,
                                               [m for u in users for m in all_memories[u]])
                out["old_evidence"] = q.old_evidence
            questions_out.append(out)
    memories = sum(len(v) for v in all_memories.values())
    turns = sum(c.turn_count for c in dataset.conversations)
    result: dict[str, Any] = {**scores(questions_out, ks), "search_mode": mode, "per_category": {}}
    updates = [q["update"] for q in questions_out if "update" in q]
    if updates:
        result["stale"] = stale_scores(updates, ks)
    for category in sorted({str(q["category"]) for q in questions_out}):
        result["per_category"][category] = scores([q for q in questions_out if q["category"] == category], ks)
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

    return {"latest_at": {str(k): any(latest_ids & set(h.memory.source_message_ids) for h in hits[:k]) for k in ks},
            "stale_at": {str(k): any(stale(h.memory) for h in hits[:k]) for k in ks},
            "stale_active": any(stale(m) for m in memories)}


def stale_scores(updates: list[dict[str, Any]], ks: Sequence[int]) -> dict[str, Any]:
    """Over the questions about something that changed: the share whose top k holds the latest statement, the share
    whose top k returns a stale memory, and the share with a stale memory still active."""
    n = len(updates)
    return {"questions": n,
            "latest_found_at": {str(k): round(sum(u["latest_at"][str(k)] for u in updates) / n, 4) for k in ks},
            "stale_returned_at": {str(k): round(sum(u["stale_at"][str(k)] for u in updates) / n, 4) for k in ks},
            "stale_active": round(sum(u["stale_active"] for u in updates) / n, 4)}


def scores(questions: list[dict[str, Any]], ks: Sequence[int]) -> dict[str, Any]:
    n = len(questions)
    attribution = {a: sum(q["attribution"] == a for q in questions) for a in ("hit", "retrieval_miss",
                                                                             "extraction_miss")}
    return {
        "scored_questions": n,
        "recall_at": {str(k): round(sum(q["hit_at"][str(k)] for q in questions) / n, 4) if n else 0.0 for k in ks},
        "attribution": attribution,
    }
