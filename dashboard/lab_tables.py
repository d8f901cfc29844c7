"""The Lab's tables, without Streamlit: one row per experiment for what it ran, its recall and why its questions
were missed, all read from the experiment's stored record."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from timemory import Experiment
from timemory.lab import (
    ATTRIBUTION_K,
    ATTRIBUTIONS,
    EvaluationResult,
    QuestionResult,
    ReplayJob,
    Retrieved,
    StaleScores,
)
from timemory.lab import evaluation as read_evaluation


def evaluation(e: Experiment) -> EvaluationResult | None:
    """The experiment's scores read from its stored record (None when it was never scored): read once per page draw
    and handed to the tables below."""
    return read_evaluation(e)


def scored_ks(scored: Sequence[EvaluationResult | None]) -> list[int]:
    """Every k some experiment scored recall at, smallest first (the default k when none did)."""
    return sorted({int(k) for r in scored if r is not None for k in r.recall_at}) or [ATTRIBUTION_K]


def setup(e: Experiment, job: ReplayJob | None = None, *, full: bool = False,
          scored: EvaluationResult | None = None) -> dict[str, Any]:
    """What an experiment ran (``full``: with format, embedder, search mode and the scope it was ``scored`` in, for
    the inspect view); ``job`` is its replay when one is still running (its counts are recorded when it ends: until
    then the job's are shown)."""
    c = e.counts or {}
    scope = scored.search_scope if scored is not None and scored.search_scope else e.config.get("search_scope")
    more = {"format": e.dataset_format, "embedder": e.config.get("embedder"),
            "mode": e.config.get("search_mode"), "scored in": scope} if full else {}
    return {"name": e.name, "status": e.status, "dataset": Path(e.dataset_path).name, **more,
            "model": e.config.get("llm_model"), "per": e.config.get("granularity"),
            "replayed": replayed(job.done if job else c.get("exchanges"), e.config.get("granularity")),
            "failed": job.failures if job else c.get("failed"), "LLM calls": c.get("llm_calls"),
            "tokens": (c.get("prompt_tokens") or 0) + (c.get("completion_tokens") or 0),
            "minutes": round(e.wall_seconds / 60, 1)}


def why_missed(question: QuestionResult | None, k: int) -> str | None:
    """Why one question was missed at ``k`` (``hit`` when it was not), or None when it was not scored at that k."""
    return question.attribute(k) if question is not None and question.scored_at(k) else None


def attribution_at(questions: Sequence[QuestionResult], k: int) -> dict[str, int]:
    """Questions by why they were missed at ``k``, every kind counted (nothing when the experiment did not score
    that k: an attribution at another k would be mislabelled)."""
    if not questions or not questions[0].scored_at(k):
        return {}
    kinds = [q.attribute(k) for q in questions]
    return {a: kinds.count(a) for a in ATTRIBUTIONS}


def attribution_by_category(questions: Sequence[QuestionResult], k: int) -> dict[str, dict[str, int]]:
    """:func:`attribution_at` for each question category, categories in order."""
    return {c: attribution_at([q for q in questions if q.category == c], k) for c in sorted({q.category for q in
                                                                                              questions})}


def stale_columns(stale: StaleScores | None) -> dict[str, Any]:
    """Questions about something that changed: latest statement found and stale memory returned, at the largest
    k, and a stale memory still active."""
    if stale is None or not stale.latest_found_at:
        return {}
    k = list(stale.latest_found_at)[-1]
    return {f"update: latest @{k}": stale.latest_found_at[k],
            f"update: stale returned @{k}": stale.stale_returned_at.get(k),
            "update: stale active": stale.stale_active}


def recall(e: Experiment, scored: EvaluationResult | None) -> dict[str, Any]:
    """Recall@k in the experiment's own scope (with its 95% interval, MRR and session-level recall where the
    experiment recorded them), then in the memories only and in memories + messages."""
    if scored is None:
        return {"name": e.name, "questions": None, "scored in": "memories", "others (median)": None,
                "others (fewest)": None}
    by_scope = scored.recall_by_scope
    return {"name": e.name, "questions": scored.scored_questions, "scored in": scored.search_scope or "memories",
            **{f"recall@{key}": v for key, v in scored.recall_at.items()},
            **{f"recall@{key} 95% CI": f"{lo:.2f}–{hi:.2f}" for key, (lo, hi) in scored.recall_ci.items()},
            **({"MRR": scored.mrr} if scored.mrr is not None else {}),
            **{f"session recall@{key}": v for key, v in scored.session_recall_at.items()},
            **{f"facts only @{key}": v for key, v in by_scope.get("memories", {}).items()},
            **{f"facts + said @{key}": v for key, v in by_scope.get("all", {}).items()},
            **{f"session hit@{key}": v for key, v in scored.session_hit_at.items() if v},
            "others (median)": scored.distractors.median, "others (fewest)": scored.distractors.min}


def misses(e: Experiment, scored: EvaluationResult | None, k: int) -> dict[str, Any]:
    """Why the experiment's questions were missed at ``k``, and its questions about something that changed."""
    if scored is None:
        return {"name": e.name}
    return {"name": e.name,
            **{f"{a.replace('_', ' ')} @{k}": n for a, n in attribution_at(scored.questions, k).items()},
            **stale_columns(scored.stale)}


def results(e: Experiment, scored: EvaluationResult | None, k: int) -> dict[str, Any]:
    return {**recall(e, scored), **misses(e, scored, k)}


def replayed(units: int | None, granularity: str | None) -> str | None:
    """How much a replay ran, in its own unit: a per-session replay runs once a session, not once an exchange."""
    if units is None:
        return None
    unit = "session" if granularity == "session" else "exchange"
    return f"{units} {unit}{'' if units == 1 else 's'}"


def retrieved_lines(retrieved: Sequence[Retrieved], k: int) -> list[str]:
    """A question's hits as the Lab lists them: rank, whether it is evidence, score, text; a rule where k ends."""
    lines: list[str] = []
    for rank, hit in enumerate(retrieved, 1):
        mark = "✅" if hit.evidence_hit else "🟦" if hit.session_hit else "·"
        said = "💬 " if hit.kind == "episode" else ""
        lines.append(f"{rank:>2}. {mark} {hit.score:+.2f}  {said}{hit.content}")
        if rank == k and rank < len(retrieved):
            lines.append(f"──── k = {k}: below this line is not counted ────")
    return lines
