"""Faults in the pipeline, on SQLite and the real MariaDB: after each, memories and events are exactly as before the
run (or as after a complete run), the trace says what failed, and the next run works."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from doubles import CountingEmbedder, FakeOpenAIServer, short_id_of
from sqlalchemy import create_engine, event, text

from timemory import EmbeddingError, TiMem
from timemory.providers import OpenAILLM
from timemory.store import Store

EXCHANGE = [
    {"id": "m1", "role": "user", "content": "I moved to Berlin last month."},
    {"id": "m2", "role": "assistant", "content": "Welcome to Berlin!"},
]
FACTS = json.dumps({"facts": [{"content": "The user lives in Berlin.", "type": "personal"}]})
Answer = Callable[[dict[str, Any]], tuple[int, Any]]


def kind(body: dict[str, Any]) -> str:
    last = body["messages"][-1]["content"]
    if "could not be used" in last:
        return "repair"
    return "consolidate" if "NEW FACTS" in last else "extract"


def outdate_paris(body: dict[str, Any]) -> tuple[int, Any]:
    sid = short_id_of(body["messages"][-1]["content"], "The user lives in Paris.")
    return 200, json.dumps({"decisions": [
        {"fact": 0, "action": "OUTDATE", "memory_id": sid, "content": None, "reason": "moved to Berlin"}]})


def slow(body: dict[str, Any]) -> tuple[int, Any]:
    time.sleep(3)
    return 200, FACTS


def server_error(body: dict[str, Any]) -> tuple[int, Any]:
    return 500, {"error": {"message": "internal error", "type": "server_error"}}


def answer(reply: str) -> Answer:
    return lambda body: (200, reply)


def snapshot(store: Store, user: str) -> list[tuple[Any, ...]]:
    """Every memory of the user with its events: what must not change half-way."""
    mems = store.memories.list(user, limit=10_000)
    return sorted(
        (m.id, m.content, m.type, m.status, m.superseded_by,
         tuple((e.event, e.old_content, e.new_content) for e in store.memories.history(user, m.id)))
        for m in mems
    )


def engine_for(store: Store, extract: Answer, consolidate: Answer, embedder: Any) -> tuple[TiMem, FakeOpenAIServer]:
    def handler(body: dict[str, Any]) -> tuple[int, Any]:
        k = kind(body)
        if k == "repair":  # the repair round gets the same kind of (bad) answer as the first try
            k = "consolidate" if "NEW FACTS" in body["messages"][-3]["content"] else "extract"
        return (extract if k == "extract" else consolidate)(body)

    server = FakeOpenAIServer(handler)
    llm = OpenAILLM.connect(api_key=None, base_url=server.base_url, model="fake", max_retries=0, timeout=1.0)
    return TiMem(store, embedder, llm), server


LLM_FAULTS: dict[str, tuple[Answer, Answer, str]] = {
    # name: (extraction answer, consolidation answer, what the trace must say)
    "extraction returns invalid JSON": (answer('{"facts": [{"content": '), outdate_paris, "llm_output"),
    "extraction returns an empty answer": (answer(""), outdate_paris, "llm_output"),
    "extraction times out": (slow, outdate_paris, "did not answer in time"),
    "extraction raises (server error)": (server_error, outdate_paris, "InternalServerError"),
    "consolidation returns invalid JSON": (answer(FACTS), answer('{"decisions": [{"fact": "zero"'), "llm_output"),
    "consolidation returns an empty answer": (answer(FACTS), answer(""), "llm_output"),
    "consolidation times out": (answer(FACTS), lambda b: (time.sleep(3), outdate_paris(b))[1], "did not answer"),
    "consolidation raises (server error)": (answer(FACTS), server_error, "InternalServerError"),
}


@pytest.mark.parametrize("fault", list(LLM_FAULTS))
def test_llm_fault_changes_nothing_and_next_run_works(store: Store, embedder, user: str, fault: str) -> None:
    extract, consolidate, says = LLM_FAULTS[fault]
    tm, server = engine_for(store, extract, consolidate, embedder)
    with server:
        paris = tm.add("The user lives in Paris.", user_id=user, type="personal")
        before = snapshot(store, user)
        result = tm.process_messages(EXCHANGE, user_id=user)
        assert result.status == "failed", result
        assert any(says in e for e in result.errors), result.errors
        assert snapshot(store, user) == before
        assert store.runs.list(user)[0].status == "failed"  # the trace is kept
    good, server = engine_for(store, answer(FACTS), outdate_paris, embedder)
    with server:
        again = good.process_messages(EXCHANGE, user_id=user)
    assert again.status == "ok", again.errors
    assert store.memories.get(user, paris.id).status == "outdated"


@pytest.mark.parametrize("plan", [
    pytest.param([{"fact": 0, "action": "OUTDATE", "memory_id": 99, "content": None, "reason": "made-up id"}],
                 id="unknown memory id"),
    pytest.param([{"fact": 0, "action": "OUTDATE", "memory_id": None, "content": None, "reason": "no target"}],
                 id="outdate with no memory to replace"),
    pytest.param([{"fact": 3, "action": "ADD", "memory_id": None, "content": None, "reason": "no such fact"}],
                 id="unknown fact number"),
])
def test_invalid_decisions_are_rejected_and_the_fact_is_kept(store: Store, embedder, user: str, plan) -> None:
    tm, server = engine_for(store, answer(FACTS), answer(json.dumps({"decisions": plan})), embedder)
    with server:
        paris = tm.add("The user lives in Paris.", user_id=user, type="personal")
        result = tm.process_messages(EXCHANGE, user_id=user)
    assert result.status == "ok"
    assert [d.accepted for d in result.decisions if d.reason == plan[0]["reason"]] == [False]
    assert store.memories.get(user, paris.id).status == "active"  # nothing outdated on a bad decision
    assert {m.content for m in store.memories.list(user)} == {"The user lives in Paris.", "The user lives in Berlin."}


class HalfBatchEmbedder(CountingEmbedder):
    """Answers the first ``good_calls`` calls, then returns vectors for only half of the batch (a partial batch)."""

    def __init__(self, inner: Any, good_calls: int) -> None:
        super().__init__(inner)
        self.good_calls = good_calls

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = super().embed(texts)
        return vectors if self.calls <= self.good_calls else vectors[: len(texts) // 2]


def test_embedder_failing_halfway_changes_nothing(store: Store, embedder, user: str) -> None:
    """Two facts embed fine; the merged text of an UPDATE (a second embedding call) comes back short."""
    facts = json.dumps({"facts": [{"content": "The user lives in Berlin.", "type": "personal"},
                                  {"content": "The user has a cat.", "type": "personal"}]})

    def update_paris(body: dict[str, Any]) -> tuple[int, Any]:
        sid = short_id_of(body["messages"][-1]["content"], "The user lives in Paris.")
        return 200, json.dumps({"decisions": [
            {"fact": 0, "action": "UPDATE", "memory_id": sid, "content": "The user lives in Berlin, not Paris.",
             "reason": "merge"},
            {"fact": 1, "action": "ADD", "memory_id": None, "content": None, "reason": "new"}]})

    flaky = HalfBatchEmbedder(embedder, good_calls=2)  # 1: add() below, 2: the facts, 3: the merged text
    tm, server = engine_for(store, answer(facts), update_paris, flaky)
    with server:
        tm.add("The user lives in Paris.", user_id=user, type="personal")
        before = snapshot(store, user)
        result = tm.process_messages(EXCHANGE, user_id=user)
        assert result.status == "failed" and any("embedding" in e.lower() for e in result.errors), result.errors
        assert snapshot(store, user) == before
        flaky.good_calls = 100
        assert tm.process_messages(EXCHANGE, user_id=user).status == "ok"


def test_embedder_raising_changes_nothing(store: Store, embedder, user: str) -> None:
    counting = CountingEmbedder(embedder)
    tm, server = engine_for(store, answer(FACTS), outdate_paris, counting)
    with server:
        tm.add("The user lives in Paris.", user_id=user, type="personal")
        before = snapshot(store, user)
        counting.fail_with = EmbeddingError("embedding service down")
        result = tm.process_messages(EXCHANGE, user_id=user)
        assert result.status == "failed" and "embedding service down" in " ".join(result.errors)
        assert snapshot(store, user) == before
        counting.fail_with = None
        assert tm.process_messages(EXCHANGE, user_id=user).status == "ok"


def kill_connection_on_second_write(store: Store, mysql_url: str | None) -> Callable[[], int]:
    """From the second INSERT/UPDATE of a memory row on, the writing connection dies: on MariaDB a second connection
    KILLs it; on SQLite its file handle is closed. Returns a function telling how many kills happened."""
    state = {"writes": 0, "kills": 0, "armed": True}
    killer = create_engine(mysql_url) if mysql_url else None

    @event.listens_for(store.engine, "before_cursor_execute")
    def _before(conn, cursor, statement, params, context, executemany) -> None:
        if not state["armed"] or not statement.lstrip().upper().startswith(("INSERT INTO MEMOR", "UPDATE MEMOR")):
            return
        state["writes"] += 1
        if state["writes"] < 2:
            return
        state["armed"] = False
        state["kills"] += 1
        dbapi = conn.connection.dbapi_connection
        if killer is not None:
            thread = dbapi.thread_id()
            done = threading.Event()

            def kill() -> None:
                with killer.connect() as k:
                    k.execute(text(f"KILL {int(thread)}"))
                done.set()

            threading.Thread(target=kill).start()
            done.wait(10)
        else:
            dbapi.close()

    return lambda: state["kills"]


def test_connection_killed_between_two_writes_of_one_consolidation(store: Store, embedder, user: str) -> None:
    from databases import MYSQL_URL

    tm, server = engine_for(store, answer(FACTS), outdate_paris, embedder)
    with server:
        paris = tm.add("The user lives in Paris.", user_id=user, type="personal")
        before = snapshot(store, user)
        kills = kill_connection_on_second_write(store, MYSQL_URL if store.backend != "sqlite" else None)
        result = tm.process_messages(EXCHANGE, user_id=user)
        assert kills() == 1
        assert result.status == "failed" and any("database" in e.lower() for e in result.errors), result.errors
        assert snapshot(store, user) == before  # the half-written transaction was rolled back
        again = tm.process_messages(EXCHANGE, user_id=user)  # a fresh connection; no lock left behind
    assert again.status == "ok", again.errors
    assert store.memories.get(user, paris.id).status == "outdated"
    assert sum(m.status == "active" for m in store.memories.list(user)) == 1
