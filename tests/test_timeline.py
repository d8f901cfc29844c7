"""Time travel: state_at reconstructs the memories as they were (checked against snapshots), run_diff says what a
run changed. Replayed conversations keep their own dates."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from doubles import ScriptedLLMDouble, short_id_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from timemory import NotFoundError, TiMem
from timemory.core import EventLog
from timemory.store import Store


def seen(memories) -> set[tuple]:  # type: ignore[no-untyped-def,type-arg]
    return {(m.id, m.content, m.type, m.status, m.superseded_by) for m in memories}


def dated(text: str, reply: str, when: datetime, n: int) -> list[dict]:  # type: ignore[type-arg]
    return [{"id": f"u{n}", "role": "user", "content": text, "created_at": when.isoformat()},
            {"id": f"a{n}", "role": "assistant", "content": reply, "created_at": when.isoformat()}]


def test_a_replayed_contradiction_keeps_its_dates_and_every_moment_can_be_recalled(store: Store, embedder,
                                                                                   user: str) -> None:
    may, june, july = (datetime(2023, m, d, 13, 56, tzinfo=UTC) for m, d in ((5, 8), (6, 1), (7, 3)))
    llm = ScriptedLLMDouble(facts=[{"content": "The user lives in Paris.", "type": "personal"}])
    tm = TiMem(store, embedder, llm)
    first = tm.process_messages(dated("I live in Paris.", "Lovely.", may, 1), user_id=user)
    snap_may = seen(tm.list_memories(user_id=user))
    assert "Today is 2023-05-08" in llm.prompts[0][0]["content"]  # relative dates resolve against the session

    llm.facts = [{"content": "The user lives in Berlin.", "type": "personal"}]
    llm.consolidate = lambda p: [{"fact": 0, "action": "OUTDATE", "content": None, "reason": "moved",
                                  "memory_id": short_id_of(p, "The user lives in Paris.")}]
    second = tm.process_messages(dated("I moved to Berlin.", "Welcome!", june, 2), user_id=user)
    snap_june = seen(tm.list_memories(user_id=user))

    llm.facts = [{"content": "The user lives in Berlin-Mitte.", "type": "personal"}]
    llm.consolidate = lambda p: [{"fact": 0, "action": "UPDATE", "content": "The user lives in Berlin-Mitte.",
                                  "memory_id": short_id_of(p, "The user lives in Berlin."), "reason": "precise"}]
    third = tm.process_messages(dated("In Mitte, to be precise.", "Nice area.", july, 3), user_id=user)
    snap_july = seen(tm.list_memories(user_id=user))

    paris = next(m for m in tm.list_memories(user_id=user) if "Paris" in m.content)
    assert paris.outdated_at == june and paris.created_at == may
    berlin = next(m for m in tm.list_memories(user_id=user) if "Berlin" in m.content)
    assert berlin.updated_at == july

    assert tm.state_at(may - timedelta(seconds=1), user_id=user) == []
    assert seen(tm.state_at(may, user_id=user)) == snap_may
    assert seen(tm.state_at(june + timedelta(days=3), user_id=user)) == snap_june
    assert seen(tm.state_at(july, user_id=user)) == snap_july
    assert seen(tm.state_at(july.replace(tzinfo=None), user_id=user)) == snap_july  # naive means UTC

    # a memory deleted later is still there before its deletion
    tm.delete_memory(paris.id, user_id=user)
    assert paris.id in {m.id for m in tm.state_at(july, user_id=user)}
    assert paris.id not in {m.id for m in tm.state_at(datetime.now(UTC), user_id=user)}

    # what each run changed
    d1 = tm.run_diff(first.run_id, user_id=user)
    assert [(c.kind, c.before, c.after.content if c.after else None) for c in d1.changes] == [
        ("added", None, "The user lives in Paris.")]
    d2 = tm.run_diff(second.run_id, user_id=user)
    kinds = {c.kind: c for c in d2.changes}
    assert set(kinds) == {"added", "outdated"}
    assert kinds["outdated"].before and kinds["outdated"].before.status == "active"
    assert kinds["outdated"].after and kinds["outdated"].after.status == "outdated"
    assert kinds["outdated"].after.superseded_by == kinds["added"].memory_id
    d3 = tm.run_diff(third.run_id, user_id=user)
    [update] = d3.changes
    assert update.kind == "updated" and update.before and update.after
    assert (update.before.content, update.after.content) == ("The user lives in Berlin.",
                                                             "The user lives in Berlin-Mitte.")
    log = EventLog(user, tm.events(user_id=user))
    assert [log.diff(r.run_id) for r in (first, second, third)] == [d1.changes, d2.changes, d3.changes]
    assert log.diff("no-such-run") == []
    with pytest.raises(NotFoundError):
        tm.run_diff(first.run_id, user_id="someone-else")
    with pytest.raises(NotFoundError):
        tm.run_diff("no-such-run", user_id=user)


OPS = st.lists(st.tuples(st.sampled_from(["add", "edit", "retype", "outdate", "reactivate", "delete"]),
                         st.integers(0, 5)), min_size=1, max_size=12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_state_at_equals_the_snapshot_taken_at_that_moment(sqlite_store: Store, embedder, ops) -> None:
    import uuid

    user = f"prop-{uuid.uuid4().hex[:8]}"
    tm = TiMem(sqlite_store, embedder)
    snapshots: list[tuple[datetime, set[tuple]]] = []  # type: ignore[type-arg]
    for n, (op, pick) in enumerate(ops):
        current = tm.list_memories(user_id=user, limit=1000)
        target = current[pick % len(current)] if current else None
        if op == "add" or target is None:
            tm.add(f"Fact number {n}.", user_id=user, type="personal")
        elif op == "edit":
            tm.update_memory(target.id, user_id=user, content=f"{target.content} (edited {n})")
        elif op == "retype":
            tm.update_memory(target.id, user_id=user, type="plan" if target.type != "plan" else "health")
        elif op in ("outdate", "reactivate"):
            tm.set_status([target.id], user_id=user, status="outdated" if op == "outdate" else "active")
        else:
            tm.delete_memory(target.id, user_id=user)
        time.sleep(0.002)
        moment = datetime.now(UTC)
        snapshots.append((moment, seen(tm.list_memories(user_id=user, limit=1000))))
        time.sleep(0.002)
    log = EventLog(user, tm.events(user_id=user))  # the Timeline page's in-memory copy agrees with the database
    for moment, snapshot in snapshots:
        assert seen(tm.state_at(moment, user_id=user)) == snapshot
        assert seen(log.state_at(moment)) == snapshot
    final = tm.list_memories(user_id=user, limit=1000)
    last = log.events[-1].created_at  # the last point is the last event
    assert {(r["type"], r["status"]): r["memories"] for r in log.counts_over_time() if r["at"] == last} == {
        (t, s): sum(m.type == t and m.status == s for m in final) for t, s in {(m.type, m.status) for m in final}}
    for run_id in {e.run_id for e in log.events if e.run_id}:
        assert log.diff(run_id) == tm.run_diff(run_id, user_id=user).changes
