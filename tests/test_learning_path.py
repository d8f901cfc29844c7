"""Every chat exchange is learnt the same way: one queued job, claimed once by a worker, one pipeline run; whoever
waits for it sleeps until the worker says it finished."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

import pytest
from doubles import ScriptedLLMDouble
from fastapi.testclient import TestClient

from timemory import Job, TiMem
from timemory.service import create_app


class SlowExtractionDouble(ScriptedLLMDouble):
    """The scripted model, taking ``seconds`` over each structured answer (a slow extraction)."""

    def __init__(self, seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seconds = seconds

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(self.seconds)
        return super().parse(*args, **kwargs)


def watched(tm: TiMem) -> tuple[Counter[str], list[str]]:
    """Counts of successful claims by job id, and the names of the threads that read a job's state."""
    claims: Counter[str] = Counter()
    reads: list[str] = []
    queue = tm.engine.store.jobs
    claim, get = queue.claim, queue.get

    def counting_claim(*args: Any, **kwargs: Any) -> Job | None:
        job = claim(*args, **kwargs)
        if job is not None:
            claims[job.id] += 1
        return job

    def recording_get(*args: Any, **kwargs: Any) -> Job:
        reads.append(threading.current_thread().name)
        return get(*args, **kwargs)

    queue.claim = counting_claim  # type: ignore[method-assign]
    queue.get = recording_get  # type: ignore[method-assign]
    return claims, reads


@pytest.fixture
def tm(sqlite_store, embedder) -> TiMem:
    llm = ScriptedLLMDouble(facts=[{"content": "The user is training for a marathon.", "type": "activity"}],
                            reply="Good luck with the training!")
    return TiMem(sqlite_store, embedder, llm)


def learnt_once(tm: TiMem, user: str, claims: Counter[str]) -> None:
    """One done job per exchange, each claimed once, each with one run over the exchange's two messages."""
    jobs = tm.jobs.list(user_id=user)
    runs = tm.engine.store.runs.list(user, limit=100)
    assert jobs and all(j.status == "done" and j.attempts == 1 for j in jobs)
    assert {j.id: n for j, n in ((j, claims[j.id]) for j in jobs)} == {j.id: 1 for j in jobs}
    assert sorted(r.run_id for r in runs) == sorted(j.run_id for j in jobs)
    stored = tm.engine.store.conversations
    for job in jobs:
        run = next(r for r in runs if r.run_id == job.run_id)
        messages = stored.list_messages(user, job.payload["session_id"])
        assert [m.role for m in messages if m.id in run.source_message_ids] == ["user", "assistant"]


def test_a_streamed_exchange_is_learnt_through_the_queue(tm: TiMem, user: str) -> None:
    claims, _ = watched(tm)
    exchange = tm.chat.chat_with_memory_stream("I'm training for a marathon.", user_id=user)
    assert "".join(exchange).strip() == "Good luck with the training!"
    assert exchange.state == "done" and exchange.job_id is not None
    assert exchange.pipeline is not None and exchange.pipeline.run_id == tm.jobs.get(exchange.job_id,
                                                                                       user_id=user).run_id
    learnt_once(tm, user, claims)


def test_a_background_exchange_is_learnt_through_the_same_queue(tm: TiMem, user: str) -> None:
    claims, _ = watched(tm)
    exchanges = [tm.chat.submit(text, user_id=user) for text in ("I run every morning.", "I'm training hard.")]
    assert all(e.wait(30) for e in exchanges)
    assert [e.state for e in exchanges] == ["done", "done"] and len({e.job_id for e in exchanges}) == 2
    learnt_once(tm, user, claims)


def test_the_apis_chat_is_learnt_through_the_same_queue(tm: TiMem, user: str) -> None:
    claims, _ = watched(tm)
    with TestClient(create_app(tm, worker_threads=1)) as client, \
            client.stream("POST", "/v1/chat", params={"user_id": user},
                          json={"message": "I'm training for a marathon."}) as response:
        kinds = [line.removeprefix("event: ") for line in response.iter_lines() if line.startswith("event: ")]
    assert kinds[0] == "session" and kinds[-1] == "trace" and "reply" in kinds
    learnt_once(tm, user, claims)


def test_a_waiting_caller_sleeps_until_the_worker_says_it_finished(sqlite_store, embedder, user: str) -> None:
    tm = TiMem(sqlite_store, embedder, SlowExtractionDouble(1.0, facts=[{"content": "The user keeps bees.",
                                                                         "type": "activity"}]))
    claims, reads = watched(tm)
    worker = tm.worker(poll_seconds=0.05).start()
    try:
        job = tm.jobs.enqueue([{"role": "user", "content": "I keep bees."}], user_id=user)
        started = time.monotonic()
        done = tm.jobs.wait(job.id, user_id=user, timeout=30)
        waited = time.monotonic() - started
    finally:
        worker.stop(5)
    assert done.status == "done" and claims[job.id] == 1 and waited >= 1.0
    # two slow answers (extraction and consolidation) took two seconds: the waiter looked once before and once after
    assert reads.count(threading.main_thread().name) == 2


def test_messages_are_stored_once_at_the_door(tm: TiMem, user: str) -> None:
    job = tm.jobs.enqueue([{"role": "user", "content": "I keep bees.", "id": "m1"},
                           {"role": "assistant", "content": "Lovely!", "id": "m2"}], user_id=user)
    stored = tm.engine.store.conversations
    assert [m["id"] for m in job.payload["messages"]] == ["m1", "m2"]  # stored when queued, with their ids
    saves: list[int] = []
    save = stored.save_messages
    stored.save_messages = lambda *a, **k: saves.append(1) or save(*a, **k)  # type: ignore[method-assign]
    assert tm.worker().run_once() is not None and tm.jobs.get(job.id, user_id=user).status == "done"
    assert saves == []  # the worker learns from what was stored; it saves nothing again
    assert json.loads(json.dumps(job.payload))["messages"][0]["user_id"] == user


def test_a_chat_without_a_worker_runs_only_its_own_jobs_and_leaves_no_worker_behind(tm: TiMem, user: str) -> None:
    other = tm.jobs.enqueue([{"role": "user", "content": "I keep bees."}], user_id=f"{user}-other")
    exchange = tm.chat.chat_with_memory_stream("I'm training for a marathon.", user_id=user)
    list(exchange)
    assert exchange.state == "done"
    assert tm.jobs.get(other.id, user_id=f"{user}-other").status == "pending"  # not this chat's to run
    deadline = time.monotonic() + 5
    while any(t.name == "queue-stand-in" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "queue-stand-in" for t in threading.enumerate())  # it ended with the wait
