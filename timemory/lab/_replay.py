"""Replay: a dataset through the pipeline, exchange by exchange (or session by session), with its own dates.

Replays resume: an exchange whose messages a successful pipeline run already read is skipped, so running the same
replay again continues where an interrupted one stopped; exchanges whose run failed are listed and run again with
``retry_failed``. Counts are read back from the stored runs, so they hold for the whole dataset across resumes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from timemory._facade import TiMem
from timemory._validation import check_user_id
from timemory.errors import InvalidInputError, LLMError
from timemory.lab._datasets import Dataset, DatasetMessage, DatasetSession

log = logging.getLogger(__name__)

Granularity = Literal["exchange", "session"]


@dataclass
class Unit:
    """One pipeline run's worth of a replay: an exchange, or a whole session."""

    user_id: str
    session: DatasetSession
    messages: list[DatasetMessage]

    @property
    def message_ids(self) -> list[str]:
        return [t.id for t in self.messages]


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
        raise InvalidInputError(f"Unknown granularity '{granularity}'. Use exchange or session.")
    units = []
    for conv in dataset.conversations:
        user = check_user_id(dataset.user_id(user_prefix, conv))
        for session in conv.sessions:
            if granularity == "session":
                units.append(Unit(user, session, list(session.messages)))
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
    summaries: bool = False,
) -> ReplayReport:
    """Run every unit not yet processed through ``process_messages`` with its session's date; with ``summaries``,
    each session's rolling summary is kept up to date as in a chat (when due after a unit, and at the session's
    end), dated with the session's date."""
    started = time.perf_counter()
    units = units_of(dataset, user_prefix, granularity, limit)
    report = ReplayReport(total=len(units))
    done: dict[str, dict[str, str]] = {}
    sessions: dict[tuple[str, str], str] = {}
    last_of_session = {(u.user_id, u.session.title): u for u in units}
    try:
        for unit in units:
            if should_stop is not None and should_stop():
                report.stopped = True
                break
            if unit.user_id not in done:
                done[unit.user_id] = tm.processed_messages(user_id=unit.user_id)
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
                found = tm.sessions.find(unit.session.title, user_id=unit.user_id)
                sessions[key] = (found or tm.sessions.create(
                    user_id=unit.user_id, title=unit.session.title, created_at=unit.session.date)).id
            result = tm.process_messages([t.as_message() for t in unit.messages], user_id=unit.user_id,
                                         session_id=sessions[key])
            if summaries:
                summarise(tm, unit, sessions[key], session_ends=unit is last_of_session[key])
            report.processed += 1
            if result.status == "failed":
                report.failed.append((unit.user_id, unit.message_ids[0], "; ".join(result.errors)[:300]))
            if on_progress:
                on_progress(report)
    except KeyboardInterrupt:
        report.stopped = True  # the interrupted run rolled back whole; its exchange is processed on resume
    report.wall_seconds = time.perf_counter() - started
    return report


def summarise(tm: TiMem, unit: Unit, session_id: str, *, session_ends: bool) -> None:
    """Bring the session's summary up to date after a replayed unit: when due, and always at the session's end."""
    due = tm.summaries.due(user_id=unit.user_id, session_id=session_id)
    if due is None and not session_ends:
        return
    reason, through = due if due is not None else ("replay", None)
    try:
        tm.summaries.update(user_id=unit.user_id, session_id=session_id, reason=reason, through_seq=through,
                            when=unit.session.date)
        if due is not None and session_ends:  # what came after a topic change is summarised too
            tm.summaries.update(user_id=unit.user_id, session_id=session_id, reason="replay", when=unit.session.date)
    except LLMError as exc:
        log.warning("no summary for session %s: %s", unit.session.title, exc)


def user_ids(dataset: Dataset, user_prefix: str) -> list[str]:
    return [dataset.user_id(user_prefix, c) for c in dataset.conversations]


def replay_counts(tm: TiMem, dataset: Dataset, user_prefix: str) -> dict[str, Any]:
    """Exchanges run, LLM calls, tokens and failures, from the stored runs of the dataset's users."""
    runs = [r for u in user_ids(dataset, user_prefix) for r in tm.list_runs(user_id=u, limit=1_000_000)]
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
        "turns": sum(c.message_count for c in dataset.conversations),
    }
