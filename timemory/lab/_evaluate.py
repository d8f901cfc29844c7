"""Evaluation: evidence recall@k of a replayed dataset, and why each question was missed (no LLM needed; an LLM can
also answer and grade)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from timemory._facade import TiMem
from timemory._prompts import ANSWER_PROMPT, JUDGE_PROMPT
from timemory._validation import check_search_scope
from timemory.core._engine import DEFAULT_SEARCH_MODE, DEFAULT_SEARCH_SCOPE, merged
from timemory.errors import InvalidInputError, TiMemoryError
from timemory.lab._datasets import Conversation, Dataset
from timemory.lab._metrics import all_found, first_rank, ndcg
from timemory.lab._replay import replay_counts, user_ids
from timemory.lab._results import (
    ATTRIBUTION_K,
    AnswerAccuracy,
    AtK,
    Attribution,
    Cost,
    EvaluationResult,
    MemoryCounts,
    QuestionResult,
    Retrieved,
    Scores,
    StaleScores,
    UpdateOutcome,
)
from timemory.providers._llm import LLM
from timemory.schemas import SEARCH_SCOPES, Judgement, Memory, SearchHit, SearchMode, SearchScope


def attribute(question: QuestionResult | Mapping[str, Any], k: int) -> Attribution:
    """Why a scored question was missed at ``k``: ``hit`` (found in the top k), ``extraction_miss_recovered`` (found
    only because an evidence message itself is in the top k, and no memory was learnt from the evidence),
    ``session_hit`` (only a memory whose provenance is the whole session of the evidence is in the top k: it may or
    may not come from the evidence), ``retrieval_miss`` (a memory learnt from the evidence exists but ranked lower)
    or ``extraction_miss`` (no memory is known to have been learnt from it). A question in its stored shape (a
    dict) is read first."""
    return as_question(question).attribute(k)


def as_question(question: QuestionResult | Mapping[str, Any]) -> QuestionResult:
    return question if isinstance(question, QuestionResult) else QuestionResult.model_validate(question)


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


def covers(hit: SearchHit) -> set[str]:
    """The messages a hit stands for as evidence: an episode its own message, a memory the messages it was learnt
    from (none when its provenance is only its whole session)."""
    if hit.memory is not None:
        return set() if hit.memory.provenance == "session" else set(hit.memory.source_message_ids)
    return {hit.episode.message_id} if hit.episode is not None else set()


def hit_sessions(hit: SearchHit, session_of: Mapping[str, str]) -> set[str]:
    """The dataset sessions a hit comes from (a memory: those of every message it names, session-wide ones too)."""
    ids = hit.memory.source_message_ids if hit.memory is not None else (
        [hit.episode.message_id] if hit.episode is not None else [])
    return {session_of[mid] for mid in ids if mid in session_of}


def ranking_metrics(out: QuestionResult, hits: Sequence[SearchHit], evidence: set[str], ks: Sequence[int],
                    session_of: Mapping[str, str]) -> None:
    """Fill a question's first evidence rank, NDCG@k, all-evidence and session-level hits at each k."""
    covered = [covers(h) for h in hits]
    out.first_rank = first_rank(covered, evidence)
    out.ndcg_at = {str(k): round(ndcg(covered, evidence, k), 4) for k in ks}
    out.all_evidence_at = {str(k): all_found(covered, evidence, k) for k in ks}
    wanted = {session_of[e] for e in evidence if e in session_of}
    sessions = [hit_sessions(h, session_of) for h in hits]
    out.session_found_at = {str(k): any(s & wanted for s in sessions[:k]) for k in ks}


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
             scope: SearchScope = DEFAULT_SEARCH_SCOPE) -> EvaluationResult:
    """Evidence recall@k and failure attribution per question, overall and per category (no LLM needed).

    A question is a hit at k when one of the top-k results of ``search`` (the users' own search, in ``mode`` and
    ``scope``) is a memory learnt from an evidence message (:func:`from_evidence`) or, with episodes in scope, an
    evidence message itself; one that only a session-wide memory links to is a ``session_hit`` at k, reported apart
    and never counted in ``recall_at``. ``recall_by_scope`` gives recall@k of every scope on the same questions.
    Misses are attributed at ``attribution_k`` (added to ``ks``): an *extraction miss* when no memory of the
    conversation's users was learnt from the evidence at all, else a *retrieval miss*; a question found only by an
    evidence message is an *extraction miss recovered*. Each question also records its *distractors*: the memories
    searched that were not learnt from its evidence (finding it among 3 memories says little; among 3,000, much).
    The :class:`EvaluationResult`'s JSON (``to_json()``) is what the CLI writes and an experiment stores.
    """
    scope = check_search_scope(scope)
    ks = sorted({int(k) for k in (*ks, attribution_k)})
    if not ks or ks[0] < 1:
        raise InvalidInputError("k must be a list of positive integers.")
    top = ks[-1]
    groups: dict[str, list[Conversation]] = {}
    for conv in dataset.conversations:
        groups.setdefault(conv.group, []).append(conv)
    all_memories: dict[str, list[Memory]] = {}
    for uid in user_ids(dataset, user_prefix):
        all_memories[uid] = tm.list_memories(user_id=uid, limit=1_000_000)
    questions_out: list[QuestionResult] = []
    for convs in groups.values():
        users = [dataset.user_id(user_prefix, c) for c in convs]
        searched = [m for u in users for m in all_memories[u] if m.status == "active"]  # what each question is among
        session_of = {m.id: str(i) for c in convs for i, s in enumerate(c.sessions) for m in s.messages}
        for q in convs[0].questions:
            if not q.evidence:
                continue  # nothing to find (e.g. adversarial questions): not scored
            evidence = set(q.evidence)
            by_scope = searched_by_scope(tm, q.question, users, top, mode)
            hits = by_scope[scope]
            found = [evidence_hit(h, evidence) for h in hits]
            via_session = [h.memory is not None and session_link(h.memory, evidence) for h in hits]
            out = QuestionResult(
                id=q.id, question=q.question, answer=q.answer, category=q.category, evidence=q.evidence,
                hit_at={str(k): any(found[:k]) for k in ks},
                hit_at_by_scope={name: {str(k): any(evidence_hit(h, evidence) for h in found_hits[:k]) for k in ks}
                                 for name, found_hits in by_scope.items()},
                session_hit_at={str(k): any(via_session[:k]) and not any(found[:k]) for k in ks},
                evidence_learnt=any(from_evidence(m, evidence) for u in users for m in all_memories[u]),
                distractors=sum(not from_evidence(m, evidence) for m in searched),
                retrieved=[Retrieved(kind=h.kind, memory_id=h.id, user_id=h.user_id, content=h.text,
                                     score=round(h.score, 4), evidence_hit=f, session_hit=v)
                           for h, f, v in zip(hits, found, via_session, strict=True)],
            )
            ranking_metrics(out, hits, evidence, ks, session_of)
            if q.old_evidence:
                out.update = update_outcome(q.latest_evidence, q.old_evidence, hits, ks,
                                            [m for u in users for m in all_memories[u]])
                out.old_evidence = q.old_evidence
            out.attribution = out.attribute(attribution_k)
            questions_out.append(out)
    memories = sum(len(v) for v in all_memories.values())
    turns = sum(c.message_count for c in dataset.conversations)
    updates = [q.update for q in questions_out if q.update is not None]
    counts = replay_counts(tm, dataset, user_prefix)
    result = EvaluationResult(
        **dict(Scores.of(questions_out, ks, attribution_k)), search_mode=mode, search_scope=scope,
        recall_by_scope=recall_by_scope(questions_out, ks),
        per_category={category: Scores.of([q for q in questions_out if q.category == category], ks, attribution_k)
                      for category in sorted({q.category for q in questions_out})},
        stale=stale_scores(updates, ks) if updates else None,
        memories=MemoryCounts(total=memories, active=sum(m.status == "active" for v in all_memories.values()
                                                         for m in v),
                              per_100_turns=round(100 * memories / turns, 2) if turns else 0.0),
        cost=Cost(llm_calls_per_exchange=counts["llm_calls_per_run"], tokens_per_exchange=counts["tokens_per_run"],
                  runs=counts["runs"]),
        questions=questions_out)
    if answer_with is not None:
        result.answer_accuracy = answer_and_grade(questions_out, answer_with, judge or answer_with)
    return result


def answer_and_grade(questions: list[QuestionResult], answer_with: LLM, judge: LLM) -> AnswerAccuracy:
    """Answer each question from its retrieved memories, and have ``judge`` grade it against the gold answer (each
    question gets its ``model_answer``, ``correct`` and ``judge_reason``).

    Only as meaningful as the models: with a small local model the figure says little."""
    for q in questions:
        memories = "\n".join(f"- {r.content}" for r in q.retrieved) or "(none)"
        try:
            answer = "".join(answer_with.stream([{"role": "user", "content": ANSWER_PROMPT.format(
                memories=memories, question=q.question)}])).strip()
            verdict = judge.parse([{"role": "user", "content": JUDGE_PROMPT.format(
                question=q.question, gold=q.answer, answer=answer)}], Judgement, max_tokens=256)
            q.model_answer, q.correct, q.judge_reason = answer, verdict.correct, verdict.reason
        except TiMemoryError as exc:
            q.model_answer, q.correct, q.judge_reason = None, None, f"failed: {exc}"
    graded = [q for q in questions if q.correct is not None]
    per_category: dict[str, float] = {}
    for category in sorted({q.category for q in graded}):
        mine = [q for q in graded if q.category == category]
        per_category[category] = round(sum(bool(q.correct) for q in mine) / len(mine), 4)
    return AnswerAccuracy(
        accuracy=round(sum(bool(q.correct) for q in graded) / len(graded), 4) if graded else None,
        graded=len(graded), failed=len(questions) - len(graded), per_category=per_category,
        answer_model=answer_with.model, judge_model=judge.model,
        note="LLM-judged; only meaningful with a capable answer and judge model.",
    )


def update_outcome(latest: Sequence[str], old: Sequence[str], hits: Sequence[SearchHit], ks: Sequence[int],
                   memories: Sequence[Memory]) -> UpdateOutcome:
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

    return UpdateOutcome(latest_at={str(k): any(names_latest(h) for h in hits[:k]) for k in ks},
                         stale_at={str(k): any(h.memory is not None and stale(h.memory) for h in hits[:k]) for k in ks},
                         stale_active=any(stale(m) for m in memories))


def stale_scores(updates: list[UpdateOutcome], ks: Sequence[int]) -> StaleScores:
    """Over the questions about something that changed: the share whose top k holds the latest statement, the share
    whose top k returns a stale memory, and the share with a stale memory still active."""
    n = len(updates)
    return StaleScores(
        questions=n,
        latest_found_at={str(k): round(sum(u.latest_at[str(k)] for u in updates) / n, 4) for k in ks},
        stale_returned_at={str(k): round(sum(u.stale_at[str(k)] for u in updates) / n, 4) for k in ks},
        stale_active=round(sum(u.stale_active for u in updates) / n, 4))


def recall_by_scope(questions: list[QuestionResult], ks: Sequence[int]) -> dict[str, AtK]:
    """Recall@k of each scope over the same scored questions."""
    n = len(questions)
    return {scope: {str(k): round(sum(q.hit_at_by_scope[scope][str(k)] for q in questions) / n, 4) if n else 0.0
                    for k in ks} for scope in SEARCH_SCOPES}


def scores(questions: Sequence[QuestionResult | Mapping[str, Any]], ks: Sequence[int],
           attribution_k: int) -> dict[str, Any]:
    """:meth:`Scores.of` in its stored shape, for metrics put together by hand (questions as models or as dicts)."""
    return Scores.of([as_question(q) for q in questions], ks, attribution_k).model_dump(mode="json")
