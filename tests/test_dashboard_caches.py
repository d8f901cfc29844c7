"""Each of the adapter's writes clears exactly the cached readers it affects: what it changed is read fresh, and a
reader it does not affect keeps its cached answer (shown by a change made behind the adapter's back, which only a
cleared reader can see)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from doubles import HashEmbedderDouble, ScriptedLLMDouble

from dashboard import adapter
from timemory import MemoryFilter, TiMem
from timemory.store import Store

ALL = MemoryFilter.of()


@pytest.fixture
def tm(tmp_path: Path) -> Iterator[TiMem]:
    embedder = HashEmbedderDouble()
    store = Store.from_url(f"sqlite:///{tmp_path}/t.db", embedding_model=embedder.name, embedding_dim=embedder.dim)
    memory = TiMem(store, embedder, ScriptedLLMDouble(reply="Noted."))
    memory.add("The user keeps bees.", user_id="ana", type="activity")
    memory.sessions.create(user_id="ana", title="Bees")
    adapter.override(memory=memory, info={"database": "SQLite", "llm": "double", "embedder": embedder.name})
    yield memory
    adapter.override()
    store.close()


def stats(user_id: str = "ana") -> tuple[int, int]:
    """The sidebar's counts: (active memories, sessions)."""
    u = next(u for u in adapter.users() if u.id == user_id)
    return u.memories_active, u.sessions


def read_all() -> tuple[int, list[str], tuple[int, int], list[str]]:
    """Fill the caches: the browser's count and page, the sidebar's counts, the session list."""
    return (adapter.memory_count("ana", ALL), [m.content for m in adapter.memories_page("ana", ALL, 10, 0)], stats(),
            [s.title for s in adapter.sessions("ana")])


def test_a_memory_write_refreshes_the_browser_and_the_sidebar_but_not_the_session_list(tm: TiMem) -> None:
    assert read_all() == (1, ["The user keeps bees."], (1, 1), ["Bees"])
    tm.sessions.create(user_id="ana", title="Behind the cache")
    adapter.add_memory("The user lives in Porto.", user_id="ana", type="personal", status="active")
    assert adapter.memory_count("ana", ALL) == 2
    assert "The user lives in Porto." in [m.content for m in adapter.memories_page("ana", ALL, 10, 0)]
    assert stats() == (2, 2)  # the sidebar's counts are read again, sessions included
    assert [s.title for s in adapter.sessions("ana")] == ["Bees"]  # not cleared: the cached list


@pytest.mark.parametrize("write", ["edit", "outdate", "delete"])
def test_edits_status_changes_and_deletes_refresh_the_browser_and_the_sidebar_counts(tm: TiMem, write: str) -> None:
    from timemory import MemoryEdit

    read_all()
    bees = tm.list_memories(user_id="ana")[0]
    if write == "edit":
        adapter.edit_memories([MemoryEdit(memory_id=bees.id, content="The user keeps three hives.")], user_id="ana")
        assert [m.content for m in adapter.memories_page("ana", ALL, 10, 0)] == ["The user keeps three hives."]
    elif write == "outdate":
        adapter.set_status([bees.id], user_id="ana", status="outdated")
        assert stats() == (0, 1) and adapter.memory_count("ana", MemoryFilter.of(statuses=["outdated"])) == 1
    else:
        adapter.delete_memories([bees.id], user_id="ana")
        assert adapter.memory_count("ana", ALL) == 0 and stats() == (0, 1)


def test_renaming_a_session_refreshes_the_session_list_only(tm: TiMem) -> None:
    read_all()
    session = tm.sessions.list(user_id="ana")[0]
    tm.add("The user lives in Porto.", user_id="ana", type="personal")  # behind the cache
    adapter.rename_session(session.id, user_id="ana", title="Beekeeping")
    assert [s.title for s in adapter.sessions("ana")] == ["Beekeeping"]
    assert adapter.memory_count("ana", ALL) == 1 and stats() == (1, 1)  # not cleared: still one memory


def test_deleting_a_session_refreshes_the_session_list_and_the_sidebar_but_not_the_browser(tm: TiMem) -> None:
    read_all()
    session = tm.sessions.list(user_id="ana")[0]
    tm.add("The user lives in Porto.", user_id="ana", type="personal")  # behind the cache
    adapter.delete_session(session.id, user_id="ana")
    assert adapter.sessions("ana") == [] and stats() == (2, 0)
    assert adapter.memory_count("ana", ALL) == 1  # not cleared


def test_a_message_sent_refreshes_the_sessions_and_the_learning_that_follows_refreshes_the_memories(tm: TiMem) -> None:
    read_all()
    turn = adapter.submit_message("I started a vegetable garden.", user_id="ana", session_id=None)
    assert len(adapter.sessions("ana")) == 2 and stats()[1] == 2  # the new chat is listed at once
    assert turn.wait(timeout=30) and adapter.pending(turn.session_id) == []
    tm.add("The user lives in Porto.", user_id="ana", type="personal")
    assert adapter.memory_count("ana", ALL) == 1  # the browser's count is not cleared by a message
    adapter.learnt_from_chat()
    assert adapter.memory_count("ana", ALL) == tm.count_memories(user_id="ana") >= 2


def test_a_new_user_refreshes_the_user_list_only(tm: TiMem) -> None:
    read_all()
    tm.add("The user lives in Porto.", user_id="ana", type="personal")  # behind the cache
    adapter.create_user("zoe")
    assert {u.id for u in adapter.users()} == {"ana", "zoe"}
    assert adapter.memory_count("ana", ALL) == 1  # not cleared


def test_deleting_a_user_forgets_what_was_cached_under_their_data_version(tm: TiMem) -> None:
    """A user made again under a deleted one's id counts versions from 0 again: what was cached for the old user
    at a version must not be shown for the new one at the same version."""
    version = adapter.version("ana")
    old = [e.memory_id for e in adapter.event_log("ana", version).events]
    adapter.delete_user("ana")
    assert adapter.version("ana") == 0 and adapter.users() == [] and adapter.memory_count("ana", ALL) == 0
    tm.users.ensure(user_id="ana")  # made again on purpose: an erased id takes no writes otherwise
    new = tm.add("The user plays the oboe.", user_id="ana", type="activity")
    assert adapter.version("ana") == version  # the same number again
    assert [e.memory_id for e in adapter.event_log("ana", version).events] == [new.id] != old
    assert [m.content for m in adapter.state_at("ana", new.updated_at, version)] == ["The user plays the oboe."]


def test_every_write_says_what_it_clears() -> None:
    memory = ("memory_count", "memories_page", "users")
    assert adapter.CLEARS["add_memory"] == adapter.CLEARS["edit_memories"] == memory
    assert adapter.CLEARS["set_status"] == adapter.CLEARS["delete_memories"] == memory
    assert adapter.CLEARS["rename_session"] == ("sessions",) and adapter.CLEARS["create_user"] == ("users",)
    assert adapter.CLEARS["delete_session"] == adapter.CLEARS["submit_message"] == ("sessions", "users")
    assert adapter.CLEARS["start_replay"] == adapter.CLEARS["replay_demo"] == ("experiments",)
    assert set(adapter.CLEARS["delete_user"]) >= {*memory, "sessions", "experiments", "event_log", "map_data"}
