"""Hand edits (the memory browser's Save): all or nothing, never blank, never on a memory that changed meanwhile."""

from __future__ import annotations

import pytest

from timemory import ConflictError, InvalidInputError, MemoryEdit, NotFoundError, TiMem


def contents(tm: TiMem, user: str) -> dict[str, str]:
    return {m.id: m.content for m in tm.list_memories(user_id=user)}


def test_edits_land_on_exactly_the_named_memories(tm: TiMem, user: str) -> None:
    a = tm.add("The user lives in Paris.", user_id=user, type="personal", status="outdated")
    b = tm.add("The user lives in Berlin.", user_id=user, type="personal", status="outdated")
    c = tm.add("The user likes tea.", user_id=user, type="preference")
    saved = tm.edit_memories([MemoryEdit(memory_id=b.id, content="The user lived in Berlin until 2024.",
                                         seen_updated_at=b.updated_at)], user_id=user)
    assert [m.id for m in saved] == [b.id]
    after = contents(tm, user)
    assert after == {a.id: a.content, b.id: "The user lived in Berlin until 2024.", c.id: c.content}
    assert tm.history(b.id, user_id=user)[-1].event == "EDIT"
    assert [e.event for e in tm.history(a.id, user_id=user)] == ["ADD"]
    assert tm.search("Berlin until 2024", user_id=user, statuses=None, limit=1)[0].memory.id == b.id  # re-embedded


def test_an_empty_edit_is_refused_and_nothing_else_is_saved(tm: TiMem, user: str) -> None:
    a = tm.add("The user plays chess.", user_id=user, type="activity")
    b = tm.add("The user likes jazz.", user_id=user, type="preference")
    before = contents(tm, user)
    for blank in ("", "   \n"):
        with pytest.raises(InvalidInputError, match="cannot be blank"):
            tm.edit_memories([MemoryEdit(memory_id=a.id, content="The user plays chess every Sunday."),
                              MemoryEdit(memory_id=b.id, content=blank)], user_id=user)
    assert contents(tm, user) == before
    assert [e.event for e in tm.history(a.id, user_id=user)] == ["ADD"]


def test_an_edit_made_on_a_stale_view_is_a_conflict_and_changes_nothing(tm: TiMem, user: str) -> None:
    a = tm.add("The user runs 5 km.", user_id=user, type="activity")
    b = tm.add("The user drinks coffee.", user_id=user, type="preference")
    tm.update_memory(a.id, user_id=user, content="The user runs 10 km.")  # someone else saved first
    with pytest.raises(ConflictError, match="changed since it was shown"):
        tm.edit_memories([MemoryEdit(memory_id=b.id, content="The user drinks green tea.",
                                     seen_updated_at=b.updated_at),
                          MemoryEdit(memory_id=a.id, content="The user runs 7 km.",
                                     seen_updated_at=a.updated_at)], user_id=user)
    assert contents(tm, user) == {a.id: "The user runs 10 km.", b.id: "The user drinks coffee."}


def test_another_users_memory_cannot_be_edited(tm: TiMem, user: str) -> None:
    theirs = tm.add("Their secret.", user_id="someone-else", type="personal")
    mine = tm.add("Mine.", user_id=user, type="personal")
    with pytest.raises(NotFoundError):
        tm.edit_memories([MemoryEdit(memory_id=mine.id, content="Mine, edited."),
                          MemoryEdit(memory_id=theirs.id, content="Overwritten")], user_id=user)
    assert tm.get_memory(theirs.id, user_id="someone-else").content == "Their secret."
    assert tm.get_memory(mine.id, user_id=user).content == "Mine."


def test_status_and_type_edits_and_duplicates(tm: TiMem, user: str) -> None:
    a = tm.add("The user is a nurse.", user_id=user, type="personal")
    [edited] = tm.edit_memories([MemoryEdit(memory_id=a.id, type="professional", status="outdated",
                                            seen_updated_at=a.updated_at)], user_id=user)
    assert (edited.type, edited.status, edited.content) == ("professional", "outdated", "The user is a nurse.")
    with pytest.raises(InvalidInputError, match="once per save"):
        tm.edit_memories([MemoryEdit(memory_id=a.id, status="active"), MemoryEdit(memory_id=a.id, type="plan")],
                         user_id=user)
    with pytest.raises(InvalidInputError, match="Unknown memory type"):
        tm.edit_memories([MemoryEdit(memory_id=a.id, type="secret")], user_id=user)
    assert tm.get_memory(a.id, user_id=user).status == "outdated"


def test_histories_and_export_with_history(tm: TiMem, user: str) -> None:
    import json

    from timemory.core import memories_to_json

    a = tm.add("The user likes rain.", user_id=user, type="preference")
    tm.update_memory(a.id, user_id=user, content="The user likes summer rain.")
    b = tm.add("The user has a bike.", user_id=user, type="personal")
    histories = tm.histories([a.id, b.id, "nope"], user_id=user)
    assert [e.event for e in histories[a.id]] == ["ADD", "EDIT"] and set(histories) == {a.id, b.id}
    assert tm.histories([a.id], user_id="someone-else") == {}
    exported = json.loads(memories_to_json(tm.list_memories(user_id=user), histories))
    assert {m["id"]: [e["event"] for e in m["history"]] for m in exported} == {a.id: ["ADD", "EDIT"], b.id: ["ADD"]}
    assert "history" not in json.loads(memories_to_json(tm.list_memories(user_id=user)))[0]


def test_an_export_with_history_imports_as_memories(tm: TiMem, user: str, tmp_path) -> None:
    from timemory.core import memories_to_json, read_memories

    a = tm.add("The user collects stamps.", user_id=user, type="activity")
    path = tmp_path / "export.json"
    path.write_text(memories_to_json([a], tm.histories([a.id], user_id=user)))
    assert [m.content for m in read_memories(path)] == ["The user collects stamps."]
