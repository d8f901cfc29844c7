"""Reflection repairs what consolidation let through: a contradiction left active, a duplicate; validated like a
consolidation, applied as runs of kind ``reflection``, resumable, and blind to every other user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from doubles import ReflectingLLMDouble

from timemory import TiMem

T0 = datetime(2024, 1, 10, tzinfo=UTC)
PARIS = "The user lives in Paris."
BERLIN = "The user moved to Berlin."
CELLO = "The user plays the cello."
QUARTET = "The user plays the cello in a string quartet."
TEA = "The user likes green tea in the morning."
MERGED = "The user plays the cello in a string quartet."


def _life(tm: TiMem, user: str) -> dict[str, str]:
    """Two memories about home (same subject key), two near-duplicates about the cello, one about something else."""
    rows = [(PARIS, "personal", "home", 0), (CELLO, "activity", None, 10), (TEA, "preference", None, 20),
            (QUARTET, "activity", None, 40), (BERLIN, "personal", "home", 60)]
    return {content: tm.add(content, user_id=user, type=type_, subject=subject,
                            created_at=T0 + timedelta(days=days)).id
            for content, type_, subject, days in rows}


def repair(shown: dict[str, int]) -> list[dict[str, Any]]:
    """What a capable model says: Paris is replaced by Berlin, the cello memories are one."""
    changes = []
    if PARIS in shown and BERLIN in shown:
        changes.append({"memory_id": shown[PARIS], "action": "OUTDATE", "by": shown[BERLIN], "content": None,
                        "reason": "moved to Berlin"})
    if CELLO in shown and QUARTET in shown:
        changes.append({"memory_id": shown[CELLO], "action": "MERGE", "by": shown[QUARTET], "content": MERGED,
                        "reason": "the same instrument"})
    return changes


def test_reflection_outdates_a_contradiction_and_merges_a_duplicate(tm_with, user) -> None:
    llm = ReflectingLLMDouble(repair)
    tm = tm_with(llm)
    ids = _life(tm, user)
    other = f"{user}-other"
    theirs = _life(tm, other)
    before = datetime.now(UTC)

    report = tm.reflect(user_id=user)

    assert (report.outdated, report.merged, report.failed) == (2, 1, 0)
    assert report.llm_calls == len(report.runs) <= 3  # one call per group, groups of the 5 memories
    paris, cello = tm.get_memory(ids[PARIS], user_id=user), tm.get_memory(ids[CELLO], user_id=user)
    assert paris.status == "outdated" and paris.superseded_by == ids[BERLIN]
    assert cello.status == "outdated" and cello.superseded_by == ids[QUARTET]
    assert tm.get_memory(ids[QUARTET], user_id=user).content == MERGED
    assert tm.get_memory(ids[TEA], user_id=user).status == "active"
    # every change is an event with its reason, in a run of kind reflection that the Timeline can show
    outdate = [e for e in tm.history(ids[PARIS], user_id=user) if e.event == "OUTDATE"][0]
    assert outdate.reason == "moved to Berlin" and outdate.related_memory_id == ids[BERLIN] and outdate.run_id
    run = tm.get_run(outdate.run_id, user_id=user)
    assert run.kind == "reflection" and run.status == "ok"
    diff = tm.run_diff(outdate.run_id, user_id=user)
    assert ids[PARIS] in {c.memory_id for c in diff.changes}
    merge_run = [e for e in tm.history(ids[CELLO], user_id=user) if e.event == "OUTDATE"][0].run_id
    merge = {c.memory_id: c for c in tm.run_diff(merge_run, user_id=user).changes}
    assert merge[ids[QUARTET]].before.content == QUARTET and merge[ids[QUARTET]].after.content == MERGED
    assert {m.id: m.status for m in tm.state_at(before, user_id=user)}[ids[PARIS]] == "active"
    # the other user was never shown to the model, and nothing of theirs changed
    assert all(set(group) <= set(ids) for group in llm.groups)
    assert {m.status for m in tm.list_memories(user_id=other, limit=10)} == {"active"}
    assert tm.get_memory(theirs[CELLO], user_id=other).content == CELLO


def test_reflection_is_resumable_and_asks_only_about_what_changed(tm_with, user) -> None:
    llm = ReflectingLLMDouble(lambda shown: [])
    tm = tm_with(llm)
    _life(tm, user)
    first = tm.reflect(user_id=user, max_groups=1)
    assert len(first.runs) == 1 and first.left == first.groups - 1  # a bounded pass leaves the rest for later
    rest = tm.reflect(user_id=user)
    assert rest.groups == first.groups - 1  # the reviewed group is not asked again
    assert tm.reflect(user_id=user).groups == 0
    tm.add("The user moved to Hamburg.", user_id=user, type="personal", subject="home")
    again = tm.reflect(user_id=user)
    assert again.groups == 1 and any("The user moved to Hamburg." in g for g in llm.groups[-1:])


@pytest.mark.parametrize("change, why", [
    ({"memory_id": 99, "action": "OUTDATE", "by": 1, "content": None, "reason": "x"}, "not among the memories"),
    ({"memory_id": 1, "action": "OUTDATE", "by": 1, "content": None, "reason": "x"}, "cannot replace itself"),
    ({"memory_id": "later", "action": "OUTDATE", "by": "earlier", "content": None, "reason": "x"}, "later one"),
    ({"memory_id": 1, "action": "MERGE", "by": 2, "content": " ", "reason": "x"}, "without the merged text"),
])
def test_an_unsafe_reflection_answer_is_rejected_and_changes_nothing(tm_with, user, change, why) -> None:
    def answer(shown: dict[str, int]) -> list[dict[str, Any]]:
        order = sorted(shown.values())
        fixed = {k: (order[-1] if v == "later" else order[0] if v == "earlier" else v) for k, v in change.items()
                 if k in ("memory_id", "by")}
        return [{**change, **fixed}]

    tm = tm_with(ReflectingLLMDouble(answer))
    ids = _life(tm, user)
    before = {m.id: (m.content, m.status) for m in tm.list_memories(user_id=user, limit=10)}
    report = tm.reflect(user_id=user)
    assert report.outdated == report.merged == 0
    after = {m.id: (m.content, m.status) for m in tm.list_memories(user_id=user, limit=10)}
    assert after == before and set(after) == set(ids.values())
    run = tm.get_run(report.runs[0], user_id=user)
    assert run.decisions and not run.decisions[0].accepted and why in (run.decisions[0].rejected_because or "")


def test_a_queued_reflection_runs_on_a_worker(tm_with, user) -> None:
    tm = tm_with(ReflectingLLMDouble(repair))
    ids = _life(tm, user)
    job = tm.jobs.enqueue_reflection(user_id=user)
    assert job.kind == "reflect" and job.status == "pending"
    done = tm.worker().run_once(user_id=user)
    assert done is not None and done.status == "done" and done.run_id
    assert tm.get_run(done.run_id, user_id=user).kind == "reflection"
    assert tm.get_memory(ids[PARIS], user_id=user).status == "outdated"


def test_two_duplicates_are_not_merged_into_one_memory_in_one_answer() -> None:
    from timemory import Memory, ReflectionPlan
    from timemory.core._reflection import validate_changes

    shown = {i + 1: Memory(id=f"m{i}", user_id="u", content=text, type="activity", status="active",
                           created_at=T0 + timedelta(days=i), updated_at=T0 + timedelta(days=i))
             for i, text in enumerate([CELLO, "The user plays cello.", QUARTET])}
    plan = ReflectionPlan.model_validate({"changes": [
        {"memory_id": 1, "action": "MERGE", "by": 3, "content": MERGED, "reason": "same"},
        {"memory_id": 2, "action": "MERGE", "by": 3, "content": "The user plays cello.", "reason": "same"}]})
    decisions: list = []
    outdates, merges = validate_changes(plan, shown, decisions)
    assert outdates == [] and [(old.id, keep.id) for old, keep, _, _ in merges] == [("m0", "m2")]
    assert [d.rejected_because for d in decisions if not d.accepted] == [
        "the memory to keep already takes in another duplicate"]


def test_reflection_refuses_to_retire_a_memory_unrelated_to_the_one_said_to_replace_it(tm_with, user) -> None:
    """A weak model that calls every memory replaced by the newest one shown changes only what is related."""
    def newest_replaces_all(shown: dict[str, int]) -> list[dict[str, Any]]:
        newest = max(shown.values())
        return [{"memory_id": i, "action": "OUTDATE", "by": newest, "content": None, "reason": "newer"}
                for i in shown.values() if i != newest]

    tm = tm_with(ReflectingLLMDouble(newest_replaces_all))
    _life(tm, user)
    piano, coffee = "The user plays the piano at home.", "The user drinks coffee at work every morning."
    tm.add(piano, user_id=user, type="activity", created_at=T0 + timedelta(days=90))
    tm.add(coffee, user_id=user, type="activity", created_at=T0 + timedelta(days=95))
    tm.reflect(user_id=user)
    status = {m.content: m.status for m in tm.list_memories(user_id=user, limit=10)}
    assert status[PARIS] == "outdated"  # the same subject key: home
    assert status[TEA] == "active"  # coffee is close to it (cosine 0.6), but neither its subject nor its type
    assert status[piano] == "active"  # same type, but coffee is far from it (0.32)
    assert status[BERLIN] == status[coffee] == "active"
    rejected = [d.rejected_because or "" for r in tm.list_runs(user_id=user, limit=20) for d in r.decisions
                if not d.accepted]
    assert any("cannot replace" in why for why in rejected) and any("too far apart" in why for why in rejected)


def test_the_guard_reads_subject_type_and_closeness() -> None:
    from timemory import Memory
    from timemory.core import ReflectionPolicy
    from timemory.core._reflection import refusal

    def memory(content: str, type_: str, subject: str | None = None) -> Memory:
        return Memory(id=content, user_id="u", content=content, type=type_, subject=subject, status="active",
                      created_at=T0, updated_at=T0)

    policy = ReflectionPolicy(outdate_floor=0.5, merge_floor=0.6)
    paris, berlin = memory(PARIS, "personal", "home"), memory(BERLIN, "personal", "home")
    tea, cello = memory(TEA, "preference"), memory(CELLO, "activity")
    assert refusal(paris, berlin, "OUTDATE", 0.1, policy) is None  # same subject, however far
    assert "cannot replace" in (refusal(tea, cello, "OUTDATE", 0.9, policy) or "")
    assert "too far apart" in (refusal(cello, memory(QUARTET, "activity"), "OUTDATE", 0.49, policy) or "")
    assert refusal(cello, memory(QUARTET, "activity"), "OUTDATE", 0.5, policy) is None
    assert "duplicates" in (refusal(cello, tea, "MERGE", 0.59, policy) or "")
    assert refusal(tea, cello, "OUTDATE", 0.0, ReflectionPolicy(outdate_floor=None)) is None
