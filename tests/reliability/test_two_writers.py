"""Two writers learn about the same user at once (threads on SQLite and MariaDB, processes on MariaDB).

Mechanism: every write transaction takes the user's lock row first (``BEGIN IMMEDIATE`` on SQLite, ``SELECT … FOR
UPDATE`` on the user row elsewhere) and checks the user's memory version it planned on; if another writer got in
first, the run plans again on what is there now (up to 3 times). So overlapping facts are merged or found known,
never stored twice, and no update is lost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from doubles import ScriptedLLMDouble, merge_or_skip

from timemory import MemoryFilter, TiMem
from timemory.store import Store

HERE = Path(__file__).resolve().parent
FACTS = ["The user plays tennis on Mondays.", "The user plays tennis with Omar."]


def planned_together(n: int = 2):
    """A consolidation hook whose first call in each writer waits for the other: both plan on the same version."""
    barrier = threading.Barrier(n, timeout=30)
    local = threading.local()

    def hook(prompt: str, fact: str) -> list[dict]:  # type: ignore[type-arg]
        if not getattr(local, "waited", False):
            local.waited = True
            barrier.wait()
        return merge_or_skip(prompt, fact)

    return hook


def check_outcome(store: Store, user: str, facts: list[str]) -> None:
    active = [m for m in store.memories.list(user, MemoryFilter.of(statuses=["active"])) if "tennis" in m.content]
    assert len(active) == 1, [m.content for m in active]  # no duplicate from the overlap
    for fact in facts:  # no lost update: both facts are in the merged memory
        assert fact.removeprefix("The user ").rstrip(".") in active[0].content, active[0].content
    events = [e.event for e in store.memories.history(user, active[0].id)]
    assert events.count("UPDATE") == len(set(facts)) and events[0] == "ADD"


@pytest.mark.parametrize("facts", [FACTS, [FACTS[0], FACTS[0]]], ids=["different details", "the same fact twice"])
def test_two_threads_same_user(store: Store, embedder, user: str, facts: list[str]) -> None:
    TiMem(store, embedder).add("The user plays tennis.", user_id=user, type="activity")
    hook = planned_together()
    results: list[object] = []

    def writer(fact: str) -> None:
        llm = ScriptedLLMDouble(facts=[{"content": fact, "type": "activity"}], consolidate=lambda p: hook(p, fact))
        results.append(TiMem(store, embedder, llm).process_messages([{"role": "user", "content": fact}], user_id=user))

    threads = [threading.Thread(target=writer, args=(f,)) for f in facts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [r.status for r in results] == ["ok", "ok"], [r.errors for r in results]  # type: ignore[attr-defined]
    assert any("planned again" in e for r in results for e in r.errors)  # type: ignore[attr-defined]
    if facts[0] == facts[1]:
        active = [m for m in store.memories.list(user, MemoryFilter.of(statuses=["active"])) if "tennis" in m.content]
        assert len(active) == 1 and "Mondays" in active[0].content
        assert [e.event for e in store.memories.history(user, active[0].id)].count("UPDATE") == 1
    else:
        check_outcome(store, user, facts)


def test_two_processes_same_user_on_mariadb(embedder, user: str, tmp_path) -> None:
    from databases import MYSQL_URL, make_store

    store = make_store("mariadb", embedder, tmp_path)
    TiMem(store, embedder).add("The user plays tennis.", user_id=user, type="activity")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE.parents[1])])}
    procs = [subprocess.Popen([sys.executable, str(HERE / "writer_process.py"), MYSQL_URL, user, fact, str(barrier)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for fact in FACTS]
    outputs = [p.communicate(timeout=300) for p in procs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, err in outputs]
    assert [r["status"] for r in results] == ["ok", "ok"], outputs
    assert any("planned again" in e for r in results for e in r["errors"])
    check_outcome(store, user, FACTS)
    store.close()
