"""Erasure means gone: a marker written through every interface is found nowhere once its user is erased, not in
any table and not in the SQLite file; an erased memory's text leaves the traces, cached answers and experiments."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from doubles import ScriptedLLMDouble
from sqlalchemy import inspect, text

from timemory import MemoryEdit, TiMem
from timemory.lab import configuration, load_dataset, run_experiment
from timemory.store import Store


def adds(prompt: str) -> list[dict[str, Any]]:
    return [{"fact": 0, "action": "ADD", "memory_id": None, "content": None, "reason": "new"}]


def every_row(store: Store) -> str:
    """Every value of every table, as one text."""
    out = []
    with store.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            out += [repr(tuple(row)) for row in conn.execute(text(f"SELECT * FROM {table}"))]
    return "\n".join(out)


def database_files(store: Store) -> bytes:
    path = Path(str(store.engine.url.database))
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal")) if p.exists())


def write_everywhere(store: Store, embedder, user: str, marker: str, tmp_path: Path) -> TiMem:  # type: ignore[no-untyped-def]
    """The marker through add, edit, process, chat (with the session's summary), the queue, a cached replay with its
    experiment and summaries, and a key."""
    llm = ScriptedLLMDouble(facts=[{"content": f"The user's code word is {marker}.", "type": "personal"}],
                            consolidate=adds, reply=f"I will remember {marker}.")
    tm = TiMem(store, embedder, llm)
    tm.add(f"The user likes {marker} tea.", user_id=user)
    plain = tm.add("The user likes coffee.", user_id=user)
    tm.edit_memories([MemoryEdit(memory_id=plain.id, content=f"The user likes {marker} coffee.")], user_id=user)
    tm.process_messages([{"role": "user", "content": f"My code word is {marker}."}], user_id=user)
    turn = tm.chat.chat_with_memory_stream(f"Remember {marker} for me.", user_id=user, session_id=None)
    list(turn)
    assert tm.summaries.update(user_id=user, session_id=turn.session_id, reason="asked") is not None
    tm.jobs.enqueue([{"role": "user", "content": f"Queued {marker}."}], user_id=user)
    tm.keys.create(user_id=user, label=f"key of {marker}")
    path = tmp_path / f"{user}.json"
    path.write_text(json.dumps({"sessions": [{"date": "2024-03-01", "messages": [
        {"id": "r1", "role": "user", "content": f"In the replay my code word is {marker}."}]}],
        "questions": [{"id": "q1", "question": "What is the code word?", "answer": marker, "evidence": ["r1"]}]}))
    dataset = load_dataset(path, "timemory")
    cached = tm.variant(cache_answers=True)
    run_experiment(cached, dataset, name=f"exp-{user}", user_prefix=user, evaluate_after=True,
                   config={**configuration(cached, granularity="exchange"), "summaries": True})
    return tm


def test_an_erased_user_is_found_nowhere(store: Store, embedder, tmp_path: Path) -> None:
    user, other = f"u{uuid.uuid4().hex[:8]}", f"o{uuid.uuid4().hex[:8]}"
    marker, kept = f"zq{uuid.uuid4().hex[:10]}", f"zk{uuid.uuid4().hex[:10]}"
    tm = write_everywhere(store, embedder, user, marker, tmp_path)
    write_everywhere(store, embedder, other, kept, tmp_path)
    assert marker in every_row(store) and tm.search(marker, user_id=user)  # the index holds the user too
    assert {h.episode.speaker for h in tm.search(marker, user_id=user, scope="episodes", limit=20)  # type: ignore[union-attr]
            } == {"user", "assistant", "summary"}  # and the episode index their words and summaries

    removed = tm.erase_user(user_id=user)

    assert removed["memories"] >= 3 and removed["api_keys"] == 1 and removed["jobs"] >= 1
    assert removed["llm_cache"] >= 1 and removed["experiments"] == 1  # its question records left the experiment
    assert removed["session_summaries"] >= 2 and removed["messages"] >= 4
    rows = every_row(store)
    assert marker not in rows
    if store.backend == "sqlite":
        assert marker.encode() not in database_files(store)
    assert not tm.search(marker, user_id=user, scope="all") and tm.list_memories(user_id=user) == []
    assert user not in {k.user_id for k in tm.keys.list()} and user not in {u.id for u in tm.users.list()}
    # the other user is untouched
    assert kept in rows and tm.search(kept, user_id=other)
    assert any(k.user_id == other for k in tm.keys.list())


def test_an_erased_memory_leaves_no_trace_but_the_words_the_user_said(store: Store, embedder,
                                                                        tmp_path: Path) -> None:
    user, marker = f"u{uuid.uuid4().hex[:8]}", f"zm{uuid.uuid4().hex[:10]}"
    llm = ScriptedLLMDouble(facts=[{"content": f"The user's locker code is {marker}.", "type": "personal"}],
                            consolidate=adds)
    tm = TiMem(store, embedder, llm).variant(cache_answers=True)
    result = tm.process_messages([{"role": "user", "content": f"My locker code is {marker}."}], user_id=user)
    [memory_id] = [c.memory_id for c in result.changes]
    keep = tm.add("The user likes hiking.", user_id=user)

    tm.erase(memory_id=memory_id, user_id=user)

    rows = every_row(store)
    said = f"My locker code is {marker}."
    assert rows.count(marker) == rows.count(said)  # only in the message the user sent
    assert memory_id not in rows
    run = tm.get_run(result.run_id, user_id=user)
    assert run.changes == [] and all(marker not in f.content for f in run.facts)
    assert tm.get_memory(keep.id, user_id=user).content == "The user likes hiking."
    with pytest.raises(Exception, match="No memory"):
        tm.erase(memory_id=memory_id, user_id=user)
