"""The durable job queue: in order per user, each job applied exactly once with several workers, a crashed worker's
job taken over after its lease, never applied twice, and given up after too many failures (SQLite and MariaDB)."""

from __future__ import annotations

import threading
import time

import pytest
from doubles import ScriptedLLMDouble
from test_lab import FactPerUserTurnDouble, adds_every_fact

from timemory import InvalidInputError, Job, JobLease, NotFoundError, PipelineResult, TiMem
from timemory.core._jobs import stored_exchange
from timemory.store import Store


def learn_as(tm: TiMem, job: Job, worker: str) -> PipelineResult:
    """What a worker that claimed ``job`` runs, under its lease."""
    messages, when = stored_exchange(tm.engine, job)
    return tm.engine.learn(messages, user_id=job.user_id, session_id=job.payload["session_id"], dated=when,
                           lease=JobLease(job.id, worker))


def exchange(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": "Noted."}]


def oldest_first(tm: TiMem, user: str) -> list:  # type: ignore[type-arg]
    return sorted(tm.list_memories(user_id=user), key=lambda m: m.created_at)


@pytest.fixture
def tm(tm_with) -> TiMem:
    return tm_with(FactPerUserTurnDouble(consolidate=adds_every_fact))


def test_bad_input_is_refused_when_queued_not_later(tm: TiMem, user: str) -> None:
    with pytest.raises(InvalidInputError):
        tm.jobs.enqueue([{"role": "robot", "content": "hi"}], user_id=user)
    with pytest.raises(InvalidInputError):
        tm.jobs.enqueue([], user_id=user)
    other = tm.sessions.create(user_id="someone-else")
    with pytest.raises(NotFoundError):
        tm.jobs.enqueue(exchange("I like figs."), user_id=user, session_id=other.id)
    job = tm.jobs.enqueue(exchange("I like figs."), user_id=user)
    with pytest.raises(NotFoundError):
        tm.jobs.get(job.id, user_id="someone-else")
    assert tm.jobs.list(user_id="someone-else") == []


def test_a_worker_learns_from_queued_exchanges_in_order(tm: TiMem, user: str) -> None:
    jobs = [tm.jobs.enqueue(exchange(f"Fact number {i}."), user_id=user) for i in range(3)]
    assert [j.status for j in jobs] == ["pending"] * 3 and all(j.payload["messages"][0]["id"] for j in jobs)
    worker = tm.worker()
    while worker.run_once():
        pass
    done = [tm.jobs.get(j.id, user_id=user) for j in jobs]
    assert [j.status for j in done] == ["done"] * 3 and all(j.attempts == 1 for j in done)
    runs = [tm.jobs.result(j) for j in done]
    assert [r.facts[0].content for r in runs if r] == [f"The user said: Fact number {i}." for i in range(3)]
    assert [m.content for m in oldest_first(tm, user)] == [
        f"The user said: Fact number {i}." for i in range(3)]  # learnt in the order they were queued


def test_two_workers_apply_every_job_once_and_in_order_per_user(tm: TiMem) -> None:
    users = ["ana", "ben"]
    queued = {u: [tm.jobs.enqueue(exchange(f"{u} fact {i}."), user_id=u).id for i in range(6)] for u in users}
    stop = threading.Event()
    workers = [tm.worker(poll_seconds=0.05) for _ in range(2)]
    threads = [threading.Thread(target=w.run_forever, args=(stop,)) for w in workers]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and tm.jobs.counts().get("done", 0) < 12:
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    assert tm.jobs.counts() == {"done": 12}
    assert sum(w.processed for w in workers) == 12 and all(w.processed for w in workers)  # both worked
    for u in users:
        jobs = [tm.jobs.get(j, user_id=u) for j in queued[u]]
        assert all(j.attempts == 1 for j in jobs)
        started = [j.started_at for j in jobs]
        assert started == sorted(started)  # one user's jobs ran one after another, in queue order
        contents = [m.content for m in oldest_first(tm, u)]
        assert contents == [f"The user said: {u} fact {i}." for i in range(6)]  # each applied exactly once


def test_a_job_whose_worker_died_is_taken_over_after_its_lease(tm: TiMem, store: Store, user: str) -> None:
    job = tm.jobs.enqueue(exchange("I swim on Fridays."), user_id=user)
    claimed = store.jobs.claim("died", 0.5)  # a worker takes the job and dies before doing anything
    assert claimed is not None and claimed.id == job.id and claimed.status == "running"
    survivor = tm.worker()
    assert survivor.run_once() is None  # the lease still holds: the user's turn is taken
    time.sleep(0.6)
    after = survivor.run_once()
    assert after is not None and after.status == "done" and after.attempts == 2
    assert [m.content for m in tm.list_memories(user_id=user)] == ["The user said: I swim on Fridays."]


def test_work_that_landed_before_a_crash_is_not_applied_again(tm: TiMem, store: Store, user: str) -> None:
    tm.jobs.enqueue(exchange("I keep bees."), user_id=user)
    claimed = store.jobs.claim("died", 0.5)
    assert claimed is not None
    # the worker ran the pipeline under its lease (the changes and the "applied" mark commit together), then died
    learn_as(tm, claimed, "died")
    calls = len(tm.llm.calls)  # type: ignore[union-attr]
    time.sleep(0.6)
    after = tm.worker().run_once()
    assert after is not None and after.status == "done" and after.run_id
    assert len(tm.llm.calls) == calls  # type: ignore[union-attr]  # not run again
    assert [m.content for m in tm.list_memories(user_id=user)] == ["The user said: I keep bees."]


def test_a_worker_that_lost_its_lease_writes_nothing(tm: TiMem, store: Store, user: str) -> None:
    tm.jobs.enqueue(exchange("I grow tomatoes."), user_id=user)
    slow = store.jobs.claim("slow", 0.2)
    assert slow is not None
    time.sleep(0.3)
    taken = store.jobs.claim("fast", 30)  # the lease ran out: another worker takes the job over
    assert taken is not None and taken.id == slow.id and taken.attempts == 2
    late = learn_as(tm, slow, "slow")
    assert late.status == "failed" and any("lease_lost" in e for e in late.errors)
    assert tm.list_memories(user_id=user) == []  # rolled back whole
    assert not store.jobs.finish(JobLease(slow.id, "slow"), status="done", run_id=late.run_id)


def test_a_job_that_keeps_failing_is_given_up_and_the_next_one_runs(store: Store, embedder, user: str) -> None:
    class BrokenExtraction(ScriptedLLMDouble):
        def parse(self, messages, schema, *, usage=None, max_tokens=None):
            from timemory import LLMOutputError

            if "poison" in messages[-1]["content"]:
                raise LLMOutputError("the model answered something else")
            return FactPerUserTurnDouble(consolidate=adds_every_fact).parse(messages, schema, usage=usage)

        def resampled(self, attempt: int) -> BrokenExtraction:
            self.retries.append(attempt)
            return self

    broken = BrokenExtraction()
    broken.retries = []
    tm = TiMem(store, embedder, broken)
    bad = tm.jobs.enqueue(exchange("poison"), user_id=user, max_attempts=2)
    good = tm.jobs.enqueue(exchange("I read novels."), user_id=user)
    worker = tm.worker(retry_seconds=0.1)
    first = worker.run_once()
    assert first is not None and first.id == bad.id and first.status == "pending" and first.error
    assert worker.processed == 0  # an attempt that will be retried is not a processed job
    assert worker.run_once() is None  # the retry waits a moment, and the user's next job waits behind it
    time.sleep(0.15)
    second = worker.run_once()
    assert second is not None and second.status == "failed" and second.attempts == 2 and "llm_output" in (
        second.error or "")
    assert second.started_at == first.started_at  # the first start is kept; attempts counts the tries
    assert broken.retries == [2]  # the retry asked the model differently, not the identical request again
    third = worker.run_once()
    assert third is not None and third.id == good.id and third.status == "done"
    assert worker.processed == 2  # two jobs ended, after three attempts
