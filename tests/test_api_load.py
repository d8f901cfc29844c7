"""The API under load, against real ``python -m timemory serve`` processes: waiting clients and chat streams hold no
server thread and no user may hold too many, and under ``--workers N`` every process's metrics add up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from doubles import FakeOpenAIServer
from test_api import Server, environment, error, metric, scripted_model


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(scripted_model) as server:
        yield server


def test_metrics_add_up_every_process_of_serve_workers(model: FakeOpenAIServer, tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = {**environment(f"sqlite:///{tmp_path}/procs.db", model.base_url), "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    server = Server(env, "--workers", "2", "--worker-threads", "0", log=tmp_path / "server.log")
    try:
        for _ in range(40):  # a new connection each, so both processes take some
            assert httpx.get(f"{server.url}/v1/memories", params={"user_id": "fay"}).status_code == 200
        scrapes = [httpx.get(f"{server.url}/metrics").text for _ in range(6)]
    finally:
        server.stop()
    assert len(list(shared.glob("counter_*.db"))) == 2  # both processes answered requests
    counted = {metric(t, "timemory_http_requests_total", method="GET", route="/v1/memories", status="200")
               for t in scrapes}
    assert counted == {40.0}  # whichever process is scraped counts the requests of both



def test_waiting_clients_hold_no_server_thread_and_a_user_may_only_wait_so_much(
        model: FakeOpenAIServer, tmp_path: Path) -> None:
    """No worker runs, so every wait lasts its whole timeout: 40 of them from 5 users must not stall anyone else,
    and a ninth wait of one user is refused."""
    from concurrent.futures import ThreadPoolExecutor

    server = Server(environment(f"sqlite:///{tmp_path}/waits.db", model.base_url), "--worker-threads", "0",
                    log=tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as api, ThreadPoolExecutor(48) as pool:
            def wait(user: str) -> httpx.Response:
                return api.post("/v1/process", params={"user_id": user, "wait": "true", "timeout": 15},
                                json={"messages": [{"role": "user", "content": "I keep bees."}]})

            waits = [pool.submit(wait, f"waiter{i % 5}") for i in range(40)]
            deadline = time.monotonic() + 10
            while sum(j["status"] == "pending" for u in range(5) for j in api.get(
                    "/v1/jobs", params={"user_id": f"waiter{u}"}).json()) < 40:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            other = api.get("/v1/memories", params={"user_id": "someone-else", "limit": 5})
            assert other.status_code == 200 and not any(w.done() for w in waits)  # answered while all 40 wait
            ninth = wait("waiter0")
            error(ninth, 429, "too_many_waits")
            assert ninth.headers["Retry-After"] == "1"
            assert {w.result().status_code for w in waits} == {202}  # each ran out of time: accepted, not done
    finally:
        server.stop()


def test_chat_streams_hold_no_server_thread_and_a_user_may_only_chat_so_much(
        model: FakeOpenAIServer, tmp_path: Path) -> None:
    """48 chat streams from 12 users, each reply taking seconds: more than the server's thread pool (40), so a
    stream that held a thread while it waited would stall everyone else; a fifth stream of one user is refused."""
    from concurrent.futures import ThreadPoolExecutor

    server = Server(environment(f"sqlite:///{tmp_path}/chats.db", model.base_url), "--worker-threads", "0",
                    log=tmp_path / "server.log")

    def chat(user: str) -> tuple[int, list[str]]:
        with httpx.stream("POST", f"{server.url}/v1/chat", params={"user_id": user}, timeout=120,
                          json={"message": "Tell me very slowly about the tides."}) as r:
            return r.status_code, [line for line in r.iter_lines() if line.startswith("event: ")]

    try:
        with ThreadPoolExecutor(48) as pool:
            streams = [pool.submit(chat, f"chatter{i % 12}") for i in range(48)]
            deadline = time.monotonic() + 30
            while sum(len(httpx.get(f"{server.url}/v1/sessions", params={"user_id": f"chatter{u}"}).json())
                      for u in range(12)) < 48:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            other = httpx.get(f"{server.url}/v1/memories", params={"user_id": "someone-else", "limit": 5})
            assert other.status_code == 200 and not any(s.done() for s in streams)  # answered while all 48 stream
            fifth = httpx.post(f"{server.url}/v1/chat", params={"user_id": "chatter0"}, json={"message": "Hi"})
            error(fifth, 429, "too_many_chats")
            assert fifth.headers["Retry-After"] == "1"
            results = [s.result() for s in streams]
        assert all(status == 200 and "event: reply" in kinds and "event: trace" in kinds for status, kinds in results)
    finally:
        server.stop()
