"""The queue across real processes on MariaDB: two API servers and two ``python -m timemory worker`` processes work
through one user's queue (each job once, in order, nothing lost), and a worker killed mid-job leaves its job to be
taken over and applied once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from databases import MYSQL_URL, reset_mysql
from doubles import FakeOpenAIServer
from test_api import ROOT, Server, environment, scripted_model


def slow_model(seconds: float):
    def handler(body: dict[str, Any]) -> tuple[int, Any]:
        if not body.get("stream"):
            time.sleep(seconds)  # long enough for several workers to compete, or to be killed mid-job
        return scripted_model(body)
    return handler


def worker(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "timemory", "worker", "--poll", "0.1", *args], env=env,
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def wait_for(check, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.fixture
def mariadb() -> Iterator[str]:
    reset_mysql(MYSQL_URL)
    yield MYSQL_URL


def test_two_servers_and_two_workers_process_one_user_s_queue_once_and_in_order(mariadb: str,
                                                                                   tmp_path: Path) -> None:
    with FakeOpenAIServer(slow_model(0.1)) as model:
        env = environment(mariadb, model.base_url)
        servers = [Server(env, log=tmp_path / f"server{i}.log") for i in range(2)]
        workers = [worker(env, tmp_path / f"worker{i}.log") for i in range(2)]
        try:
            ids = []
            for i in range(8):  # alternately through the two servers
                r = httpx.post(f"{servers[i % 2].url}/v1/process", params={"user_id": "ana"}, timeout=30,
                               json={"messages": [{"role": "user", "content": f"Fact number {i}."}]})
                assert r.status_code == 202
                ids.append(r.json()["job"]["id"])
            api = httpx.Client(base_url=servers[0].url, params={"user_id": "ana"}, timeout=30)
            jobs = wait_for(lambda: (js := [api.get(f"/v1/jobs/{j}").json()["job"] for j in ids]) and all(
                j["status"] == "done" for j in js) and js)
            assert all(j["attempts"] == 1 for j in jobs)  # each job ran once
            starts = [j["started_at"] for j in jobs]
            ends = [j["finished_at"] for j in jobs]
            assert starts == sorted(starts) and all(e <= s for e, s in zip(ends, starts[1:], strict=False))
            memories = api.get("/v1/memories", params={"limit": 100}).json()
            assert memories["total"] == 8  # nothing lost, nothing twice
            assert sorted(m["content"] for m in memories["items"]) == sorted(
                f"The user said: Fact number {i}." for i in range(8))
        finally:
            for p in workers:
                p.terminate()
                p.wait(15)
            for s in servers:
                s.stop()


def test_a_worker_killed_mid_job_leaves_it_to_another_worker(mariadb: str, tmp_path: Path) -> None:
    with FakeOpenAIServer(slow_model(1.5)) as model:
        env = environment(mariadb, model.base_url)
        server = Server(env, "--worker-threads", "0", log=tmp_path / "server.log")
        api = httpx.Client(base_url=server.url, params={"user_id": "bo"}, timeout=30)
        try:
            job_id = api.post("/v1/process", json={"messages": [
                {"role": "user", "content": "I keep bees."}]}).json()["job"]["id"]
            doomed = worker(env, tmp_path / "doomed.log", "--lease", "3")
            wait_for(lambda: api.get(f"/v1/jobs/{job_id}").json()["job"]["status"] == "running")
            os.kill(doomed.pid, signal.SIGKILL)  # mid-job: the model is still thinking
            doomed.wait(10)
            assert api.get(f"/v1/jobs/{job_id}").json()["job"]["status"] == "running"
            assert api.get("/v1/memories").json()["total"] == 0
            survivor = worker(env, tmp_path / "survivor.log", "--lease", "3")
            try:
                job = wait_for(lambda: (j := api.get(f"/v1/jobs/{job_id}").json())["job"]["status"] == "done" and j)
            finally:
                survivor.terminate()
                survivor.wait(15)
            assert job["job"]["attempts"] == 2 and job["result"]["status"] == "ok"
            assert [m["content"] for m in api.get("/v1/memories").json()["items"]] == [
                "The user said: I keep bees."]
        finally:
            server.stop()
