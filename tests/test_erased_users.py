"""Erased stays erased: after ``erase_user`` no write brings the user back by accident, only a person creating the
user again on purpose; the database remembers the erasure by a keyed hash of the id, never the id."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from doubles import ScriptedLLMDouble
from fastapi.testclient import TestClient
from sqlalchemy import select

from timemory import ErasedUserError, Memory, NotFoundError, TiMem
from timemory.service import create_app
from timemory.service._mcp import build_server
from timemory.store._models import ErasedUserRow, UserRow

FACTS = [{"content": "The user keeps bees.", "type": "activity"}]


@pytest.fixture
def tm(tm_with: Callable[..., TiMem]) -> TiMem:
    return tm_with(ScriptedLLMDouble(facts=FACTS, consolidate=lambda prompt: []))


def erased(tm: TiMem, user: str) -> Memory:
    """An erased user who had a memory, a session and a message; returns the memory they had."""
    memory = tm.add("The user keeps bees.", user_id=user, type="activity")
    session = tm.sessions.create(user_id=user)
    tm.sessions.add_messages([{"role": "user", "content": "I keep bees."}], user_id=user, session_id=session.id)
    tm.erase_user(user_id=user)
    return memory


def test_no_implicit_write_brings_an_erased_user_back(tm: TiMem, user: str) -> None:
    memory = erased(tm, user)
    said = [{"role": "user", "content": "Am I still here?"}]
    writes = {
        "add": lambda: tm.add("The user is back.", user_id=user, type="personal"),
        "process": lambda: tm.process_messages(said, user_id=user),
        "queue": lambda: tm.jobs.enqueue(said, user_id=user),
        "session": lambda: tm.sessions.create(user_id=user),
        "messages": lambda: tm.sessions.add_messages(said, user_id=user, session_id=None),
        "chat": lambda: list(tm.chat.chat_with_memory_stream("Am I still here?", user_id=user)),
        "import": lambda: tm.import_memories([(memory, None)], user_id=user),
        "key": lambda: tm.keys.create(user_id=user),
        "first use": lambda: tm.users.use(user_id=user),
    }
    refused = {}
    for name, write in writes.items():
        with pytest.raises(ErasedUserError) as caught:
            write()
        refused[name] = caught.value.code
    assert refused == dict.fromkeys(writes, "erased")
    assert user not in {u.id for u in tm.users.list()}
    assert tm.list_memories(user_id=user) == [] and tm.sessions.list(user_id=user) == []


def test_the_erasure_is_kept_by_a_keyed_hash_not_the_id(tm: TiMem, user: str) -> None:
    erased(tm, user)
    with tm.engine.store.db.read() as s:
        hashes = s.scalars(select(ErasedUserRow.id_hash)).all()
        digest = tm.engine.store.db.user_hash(s, user)
    assert digest in hashes and len(digest) == 64 and user not in digest and user not in "".join(hashes)
    other = TiMem(tm.engine.store, tm.embedder)  # the same database in a "new process": the same key
    with pytest.raises(ErasedUserError):
        other.add("The user is back.", user_id=user, type="personal")


def test_a_person_can_create_the_user_again_on_purpose(tm: TiMem, user: str) -> None:
    erased(tm, user)
    tm.users.ensure(user_id=user)
    back = tm.add("The user came back.", user_id=user, type="personal")
    assert [m.id for m in tm.list_memories(user_id=user)] == [back.id]  # nothing of before returned with them
    with tm.engine.store.db.read() as s:
        assert s.get(UserRow, user) is not None
        assert s.get(ErasedUserRow, tm.engine.store.db.user_hash(s, user)) is None


def test_other_users_are_untouched_and_new_users_still_come_on_first_use(tm: TiMem, user: str) -> None:
    erased(tm, user)
    tm.add("Someone else.", user_id=f"{user}-other", type="personal")
    assert len(tm.list_memories(user_id=f"{user}-other")) == 1


def test_the_api_answers_410_for_an_erased_user(sqlite_store, embedder, user: str) -> None:
    tm = TiMem(sqlite_store, embedder, ScriptedLLMDouble(facts=FACTS))
    tm.add("The user keeps bees.", user_id=user, type="activity")
    with TestClient(create_app(tm, worker_threads=0)) as client:
        assert client.delete(f"/v1/users/{user}").status_code in (200, 204)
        for method, path, body in [("POST", "/v1/memories", {"content": "I'm back.", "type": "personal"}),
                                   ("POST", "/v1/process", {"messages": [{"role": "user", "content": "Hi"}]}),
                                   ("POST", "/v1/sessions", {"title": "Back"})]:
            answer = client.request(method, path, params={"user_id": user}, json=body)
            assert (answer.status_code, answer.json()["error"]["code"]) == (410, "erased"), path
        assert client.post("/v1/users", json={"user_id": user}).status_code in (200, 201)  # on purpose: allowed
        assert client.post("/v1/memories", params={"user_id": user},
                           json={"content": "I'm back.", "type": "personal"}).status_code == 201


def test_mcp_refuses_to_serve_an_erased_user(tm: TiMem, user: str) -> None:
    erased(tm, user)
    with pytest.raises(ErasedUserError):
        build_server(tm, user)
    with pytest.raises(NotFoundError):
        tm.get_memory("nope", user_id=user)

