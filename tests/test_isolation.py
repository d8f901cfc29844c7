"""Every call made with another user's id sees nothing and changes nothing, even with a guessed memory id."""

from __future__ import annotations

import pytest
from doubles import ScriptedLLMDouble

from timemory import NewMessage, NotFoundError, TiMem
from timemory.store import Store


def test_other_user_cannot_read_or_change(store: Store, embedder) -> None:
    tm = TiMem(store, embedder, ScriptedLLMDouble(
        facts=[{"content": "The user lives in Oslo.", "type": "personal"}],
        consolidate=lambda p: [{"fact": 0, "action": "OUTDATE", "memory_id": 1, "content": None, "reason": "x"}],
    ))
    mine = tm.add("The user lives in Oslo.", user_id="alice", type="personal")
    session = store.conversations.create_session("alice", "Alice's chat")
    before = (tm.get_memory(mine.id, user_id="alice"), tm.history(mine.id, user_id="alice"))

    assert tm.search("Oslo", user_id="mallory", statuses=("active", "outdated")) == []
    assert tm.list_memories(user_id="mallory") == [] and tm.count_memories(user_id="mallory") == 0
    for call in (
        lambda: tm.get_memory(mine.id, user_id="mallory"),
        lambda: tm.history(mine.id, user_id="mallory"),
        lambda: tm.update_memory(mine.id, user_id="mallory", content="hacked"),
        lambda: tm.update_memory(mine.id, user_id="mallory", status="outdated"),
        lambda: tm.delete_memory(mine.id, user_id="mallory"),
        lambda: tm.set_status([mine.id], user_id="mallory", status="outdated"),
        lambda: store.conversations.get_session("mallory", session.id),
        lambda: store.conversations.rename_session("mallory", session.id, "mine now"),
        lambda: store.conversations.delete_session("mallory", session.id),
        lambda: store.conversations.save_messages("mallory", session.id, [NewMessage(role="user", content="hi")]),
    ):
        with pytest.raises(NotFoundError):
            call()
    # mallory's own pipeline run sees none of alice's memories as candidates
    result = tm.process_messages([{"role": "user", "content": "I live in Oslo"}], user_id="mallory")
    assert result.candidates == []
    assert store.conversations.list_messages("mallory", session.id) == []
    assert store.runs.list("alice") == []
    assert (tm.get_memory(mine.id, user_id="alice"), tm.history(mine.id, user_id="alice")) == before
    assert store.conversations.get_session("alice", session.id).title == "Alice's chat"


def test_user_ids_follow_one_grammar_and_an_older_odd_id_can_still_be_erased(sqlite_store: Store, embedder) -> None:
    from sqlalchemy import text

    from timemory import InvalidInputError, TiMem

    tm = TiMem(sqlite_store, embedder)
    for good in ("ana", "exp1-conv-26-a", "ana@example.com", "team:7+x=1", "_tmp.2"):
        tm.add("The user likes tea.", user_id=good)
    for bad in ("bad id/../x", "a b", "-flag", "ana\n", "tab\tid", "ünï", "x" * 129):
        with pytest.raises(InvalidInputError, match="user_id"):
            tm.add("The user likes tea.", user_id=bad)
    with sqlite_store.engine.begin() as conn:  # a user created before the grammar existed
        conn.execute(text("INSERT INTO users (id, created_at, memory_version) VALUES ('old id/../x', "
                          "'2024-01-01 00:00:00', 0)"))
    assert "old id/../x" in {u.id for u in tm.users.list()}
    tm.users.delete(user_id="old id/../x")
    assert "old id/../x" not in {u.id for u in tm.users.list()}
