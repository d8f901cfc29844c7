"""The chat shows each pipeline run once, under the last reply it learnt from."""

from __future__ import annotations

from datetime import UTC, datetime

from dashboard.runs import shown_under
from timemory import Message, PipelineResult

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def said(mid: str, role: str) -> Message:
    return Message(id=mid, user_id="u", session_id="s", role=role, content=mid, created_at=NOW)  # type: ignore[arg-type]


def run(rid: str, *mids: str) -> PipelineResult:
    return PipelineResult(run_id=rid, user_id="u", status="ok", source_message_ids=list(mids))


def test_a_session_run_shows_once_and_exchange_runs_under_their_reply() -> None:
    messages = [said(m, "user" if m.startswith("q") else "assistant") for m in ("q1", "a1", "q2", "a2", "q3", "a3")]
    session = run("session", "q1", "a1", "q2", "a2")  # a replay learnt the first two exchanges in one run
    exchange = run("exchange", "q3", "a3")
    by_message = {"q1": session, "a1": session, "q2": session, "a2": session, "q3": exchange, "a3": exchange}
    assert {mid: r.run_id for mid, r in shown_under(messages, by_message).items()} == {"a2": "session",
                                                                                       "a3": "exchange"}
    assert shown_under(messages, {}) == {}
