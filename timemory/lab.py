"""The research lab: replay a dataset through the pipeline with its own dates, record it as an experiment, and
score what memory kept (evidence recall@k and why each question was missed).

Replays resume: an exchange whose messages a successful pipeline run already read is skipped, so running the same
replay again continues where an interrupted one stopped; exchanges whose run failed are listed and run again with
``retry_failed``. Counts are read back from the stored runs, so they hold for the whole dataset across resumes.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from . import prompts
from .datasets import Conversation, Dataset, DatasetSession, Turn
from .errors import TiMemoryError, ValidationError
from .llm import LLM
from .pipeline import CANDIDATE_MODE, DEFAULT_SEARCH_MODE, TiMem
from .prompts import ANSWER_PROMPT, JUDGE_PROMPT
from .schemas import Experiment, Judgement, Memory, SearchMode
from .validation import check_user_id

Granularity = Literal["exchange", "session"]


@dataclass
class Unit:
    """One pipeline run's worth of a replay: an exchange, or a whole session."""

    user_id: str
    session: DatasetSession
    turns: list[Turn]

    @property
    def message_ids(self) -> list[str]:
        return [t.id for t in self.turns]


@dataclass
class ReplayReport:
    total: int = 0
    skipped: int = 0  # already processed by an earlier run
    processed: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (user, first message id, error)
    stopped: bool = False
    wall_seconds: float = 0.0


def units_of(dataset: Dataset, user_prefix: str, granularity: Granularity = "exchange",
             limit: int | None = None) -> list[Unit]:
    """Every unit of work of the dataset, in replay order (conversation by conversation, session by session)."""
    if granularity not in ("exchange", "session"):
        raise ValidationError(f"Unknown granularity '{granularity}'. Use exchange or session.")
    units = []
    for conv in dataset.conversations:
        user = check_user_id(dataset.user_id(user_prefix, conv))
        for session in conv.sessions:
            if granularity == "session":
                units.append(Unit(user, session, list(session.turns)))
            else:
                units.extend(Unit(user, session, chunk) for chunk in session.exchanges())
    return units[:limit] if limit is not None else units


def replay(
    tm: TiMem,
    dataset: Dataset,
    *,
    user_prefix: str,
    granularity: Granularity = "exchange",
    limit: int | None = None,
    retry_failed: bool = False,
    on_progress: Callable[[ReplayReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ReplayReport:
    """Run every unit not yet processed through ``process_messages`` with its session's date."""
    started = time.perf_counter()
    units = units_of(dataset, user_prefix, granularity, limit)
    report = ReplayReport(total=len(units))
    done: dict[str, dict[str, str]] = {}
    sessions: dict[tuple[str, str], str] = {}
    try:
        for unit in units:
            if should_stop is not None and should_stop():
                report.stopped = True
                break
            if unit.user_id not in done:
                done[unit.user_id] = tm.store.processed_messages(unit.user_id)
            statuses = done[unit.user_id]
            seen = [statuses.get(mid) for mid in unit.message_ids]
            if all(s in ("ok", "empty") for s in seen) or (not retry_failed and all(s is not None for s in seen)):
                report.skipped += 1
                if "failed" in seen:
                    report.failed.append((unit.user_id, unit.message_ids[0], "failed in an earlier run"))
                if on_progress:
                    on_progress(report)
                continue
            key = (unit.user_id, unit.session.title)
            if key not in sessions:
                found = tm.store.find_session(unit.user_id, unit.session.title)
                sessions[key] = (found or tm.store.create_session(
                    unit.user_id, unit.session.title, created_at=unit.session.date)).id
            result = tm.process_messages([t.as_message() for t in unit.turns], user_id=unit.user_id,
                                         session_id=sessions[key])
            report.processed += 1
            if result.status == "failed":
                report.failed.append((unit.user_id, unit.message_ids[0], "; ".join(result.errors)[:300]))
            if on_progress:
                on_progress(report)
    except KeyboardInterrupt:
        report.stopped = True  # the interrupted run rolled back whole; its exchange is processed on resume
    report.wall_seconds = time.perf_counter() - started
    return report


# --- experiments ------------------------------------------------------------------------------------------------------

def prompts_hash() -> str:
    return hashlib.sha256(Path(prompts.__file__).read_bytes()).hexdigest()[:16]


def configuration(tm: TiMem, *, granularity: str, base_url: str | None = None) -> dict[str, Any]:
    """The effective configuration an experiment ran with (no secrets: the LLM server's host only)."""
    return {
        "llm_model": getattr(tm.llm, "model", None),
        "llm_host": urlparse(base_url).hostname if base_url else "local",
        "embedder": tm.embedder.name,
        "embedding_dim": tm.embedder.dim,
        "similar_k": tm.similar_k,
        "similarity_threshold": tm.similarity_threshold,
        "search_mode": CANDIDATE_MODE,
        "granularity": granularity,
        "prompts_sha256": prompts_hash(),
    }


def user_ids(dataset: Dataset, user_prefix: str) -> list[str]:
    return [dataset.user_id(user_prefix, c) for c in dataset.conversations]


def replay_counts(tm: TiMem, dataset: Dataset, user_prefix: str) -> dict[str, Any]:
    """Exchanges run, LLM calls, tokens and failures, from the stored runs of the dataset's users."""
    runs = [r for u in user_ids(dataset, user_prefix) for r in tm.store.list_runs(u, limit=1_000_000)]
    latest: dict[tuple[str, ...], str] = {}  # per exchange: succeeded once, or failed
    for r in runs:
        key = tuple(r.source_message_ids)
        if latest.get(key) not in ("ok", "empty"):
            latest[key] = r.status
    n = len(runs) or 1
    return {
        "runs": len(runs),
        "exchanges": len(latest),
        "failed": sum(1 for s in latest.values() if s == "failed"),
        "llm_calls": sum(r.llm_calls for r in runs),
        "prompt_tokens": sum(r.prompt_tokens for r in runs),
        "completion_tokens": sum(r.completion_tokens for r in runs),
        "llm_calls_per_run": round(sum(r.llm_calls for r in runs) / n, 3),
        "tokens_per_run": round(sum(r.prompt_tokens + r.completion_tokens for r in runs) / n, 1),
        "turns": sum(c.turn_count for c in dataset.conversations),
    }


def record_experiment(tm: TiMem, dataset: Dataset, *, name: str, user_prefix: str, config: dict[str, Any],
                      status: str, wall_seconds: float = 0.0, metrics: dict[str, Any] | None = None) -> Experiment:
    """Create or update the experiment ``name``: one name is one dataset under one user prefix."""
    previous = tm.store.get_experiment(name)
    if previous is not None and (previous.user_prefix != user_prefix or previous.dataset_sha256 != dataset.sha256):
        raise ValidationError(
            f"Experiment '{name}' replayed {previous.dataset_path} with user prefix '{previous.user_prefix}'; "
            "use another experiment name for another dataset or prefix.")
    experiment = Experiment(
        id=previous.id if previous else str(uuid.uuid4()), name=name, dataset_path=str(dataset.path),
        dataset_sha256=dataset.sha256, dataset_format=dataset.format, user_prefix=user_prefix, status=status,
        config=config or (previous.config if previous else {}), counts=replay_counts(tm, dataset, user_prefix),
        metrics=metrics if metrics is not None else (previous.metrics if previous else {}),
        wall_seconds=(previous.wall_seconds if previous else 0.0) + wall_seconds,
    )
    tm.store.save_experiment(experiment)
    return tm.store.get_experiment(name) or experiment


# --- evaluation -------------------------------------------------------------------------------------------------------

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
            questions_out.append({
                "id": q.id, "question": q.question, "answer": q.answer, "category": q.category,
                "evidence": q.evidence, "hit_at": hit_at, "attribution": attribution,
                "retrieved": [{"memory_id": h.memory.id, "user_id": h.memory.user_id, "content": h.memory.content,
                               "score": round(h.score, 4), "evidence_hit": f}
                              for h, f in zip(hits, found, strict=True)],
            })
    memories = sum(len(v) for v in all_memories.values())
    turns = sum(c.turn_count for c in dataset.conversations)
    result: dict[str, Any] = {**_scores(questions_out, ks), "search_mode": mode, "per_category": {}}
    for category in sorted({str(q["category"]) for q in questions_out}):
        result["per_category"][category] = _scores([q for q in questions_out if q["category"] == category], ks)
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


def _scores(questions: list[dict[str, Any]], ks: Sequence[int]) -> dict[str, Any]:
    n = len(questions)
    attribution = {a: sum(q["attribution"] == a for q in questions) for a in ("hit", "retrieval_miss",
                                                                             "extraction_miss")}
    return {
        "scored_questions": n,
        "recall_at": {str(k): round(sum(q["hit_at"][str(k)] for q in questions) / n, 4) if n else 0.0 for k in ks},
        "attribution": attribution,
    }


# --- replays in the background (the dashboard's Lab page) -------------------------------------------------------------

@dataclass
class ReplayJob:
    """A replay running in a worker thread of this process; its progress can be read from any thread."""

    experiment: str
    dataset: Dataset
    user_prefix: str
    granularity: Granularity
    limit: int | None = None
    retry_failed: bool = False
    status: str = "starting"  # running, stopping, stopped, done, failed
    done: int = 0
    total: int = 0
    failures: int = 0
    processed: int = 0
    error: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None
    metrics: dict[str, Any] | None = None
    runner: TiMem | None = None  # the engine it runs with (its own k and threshold); a resume uses it again
    config: dict[str, Any] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def running(self) -> bool:
        return self.status in ("starting", "running", "stopping")

    @property
    def rate_per_min(self) -> float:
        elapsed = (self.finished_at or time.monotonic()) - self.started_at
        return self.processed / elapsed * 60 if elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        rate = self.rate_per_min / 60
        return (self.total - self.done) / rate if rate > 0 and self.running else None

    def stop(self) -> None:
        if self.running:
            self.status = "stopping"
            self._stop.set()


class ReplayJobs:
    """The replays of one server process: at most one per experiment at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, ReplayJob] = {}

    def get(self, experiment: str) -> ReplayJob | None:
        with self._lock:
            return self._jobs.get(experiment)

    def all(self) -> list[ReplayJob]:
        with self._lock:
            return list(self._jobs.values())

    def start(self, tm: TiMem, dataset: Dataset, *, experiment: str, user_prefix: str,
              granularity: Granularity = "exchange", limit: int | None = None, retry_failed: bool = False,
              config: dict[str, Any] | None = None) -> ReplayJob:
        """Start (or resume) the replay of ``experiment`` in a worker thread; refused while it is running."""
        if not experiment.strip():
            raise ValidationError("Name the experiment.")
        job = ReplayJob(experiment=experiment, dataset=dataset, user_prefix=user_prefix, granularity=granularity,
                        limit=limit, retry_failed=retry_failed, total=len(units_of(dataset, user_prefix,
                                                                                   granularity, limit)))
        config = config or configuration(tm, granularity=granularity)
        job.runner, job.config = tm, config
        with self._lock:
            current = self._jobs.get(experiment)
            if current is not None and current.running:
                raise ValidationError(f"Experiment '{experiment}' is already replaying ({current.done} of "
                                      f"{current.total}); stop it first or wait for it to end.")
            # checked before the thread starts: a clash of dataset or prefix is reported to the caller
            record_experiment(tm, dataset, name=experiment, user_prefix=user_prefix, config=config, status="running")
            self._jobs[experiment] = job
        threading.Thread(target=self._run, args=(tm, job, config), daemon=True,
                         name=f"replay-{experiment[:20]}").start()
        return job

    @staticmethod
    def _run(tm: TiMem, job: ReplayJob, config: dict[str, Any]) -> None:
        def progress(report: ReplayReport) -> None:
            job.done, job.processed, job.failures = report.skipped + report.processed, report.processed, len(
                report.failed)
            if job.status == "starting":
                job.status = "running"

        report = ReplayReport()
        try:
            job.status = "running"
            report = replay(tm, job.dataset, user_prefix=job.user_prefix, granularity=job.granularity,
                            limit=job.limit, retry_failed=job.retry_failed, on_progress=progress,
                            should_stop=job._stop.is_set)
            metrics = None
            if not report.stopped and any(c.questions for c in job.dataset.conversations):
                metrics = evaluate(tm, job.dataset, user_prefix=job.user_prefix)
            status = "stopped" if report.stopped else ("done" if not report.failed else "done_with_failures")
            record_experiment(tm, job.dataset, name=job.experiment, user_prefix=job.user_prefix, config=config,
                              status=status, wall_seconds=report.wall_seconds, metrics=metrics)
            job.metrics, job.status = metrics, "stopped" if report.stopped else "done"
        except Exception as exc:  # reported on the page; the replay can be resumed
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):  # the database itself may be what failed
                record_experiment(tm, job.dataset, name=job.experiment, user_prefix=job.user_prefix, config=config,
                                  status="failed", wall_seconds=report.wall_seconds)
        finally:
            job.finished_at = time.monotonic()
