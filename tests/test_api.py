"""The HTTP API against a real uvicorn process on 127.0.0.1 (``python -m timemory serve``), driven with httpx.

The model behind it is an OpenAI-compatible HTTP double (``FakeOpenAIServer``) that extracts one fact per user line
and adds every fact; the real local model streams through ``/v1/chat`` in ``test_local_llm``-marked tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from doubles import FakeOpenAIServer

from timemory.providers import free_port

ROOT = Path(__file__).resolve().parents[1]


def scripted_model(body: dict[str, Any]) -> tuple[int, Any]:
    """Extraction: one fact per user line; consolidation: add every fact; anything streamed: a fixed reply."""
    if body.get("stream"):
        if "slowly" in body["messages"][-1]["content"]:  # a reply that takes a second (or four) to come
            time.sleep(4.0 if "very slowly" in body["messages"][-1]["content"] else 1.0)
        return 200, "Glad to hear it, tell me more!"
    name = ((body.get("response_format") or {}).get("json_schema") or {}).get("name")
    last = body["messages"][-1]["content"]
    if name == "FactExtraction":
        lines = [ln[len("user: "):] for ln in last.splitlines() if ln.startswith("user: ")]
        return 200, json.dumps({"facts": [{"content": f"The user said: {t}", "type": "personal"} for t in lines]})
    if name == "ConsolidationPlan":
        facts = re.findall(r"^(\d+)\. \[", last.split("EXISTING MEMORIES")[0], flags=re.M)
        return 200, json.dumps({"decisions": [{"fact": int(i), "action": "ADD", "memory_id": None, "content": None,
                                               "reason": "new"} for i in facts]})
    if name == "ReflectionPlan":  # two memories about bees: the older one is replaced by the later
        shown = dict(re.findall(r"^(\d+)\. \[[^\]]*\] (.*)$", last, flags=re.M))
        bees = sorted(int(sid) for sid, text in shown.items() if "bees" in text)
        changes = [{"memory_id": bees[0], "action": "OUTDATE", "by": bees[-1], "content": None,
                    "reason": "the hive moved"}] if len(bees) == 2 else []
        return 200, json.dumps({"changes": changes})
    return 200, "A title"


def environment(db: str, model_url: str) -> dict[str, str]:
    return {**os.environ, "TIMEMORY_DATABASE_URL": db, "OPENAI_BASE_URL": model_url, "OPENAI_API_KEY": "test",
            "TIMEMORY_LLM_MODEL": "scripted", "HF_HUB_OFFLINE": "1", "TIMEMORY_LLM_MAX_RETRIES": "0"}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "timemory", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


class Server:
    """``python -m timemory serve`` in a child process, stopped by its pid."""

    def __init__(self, env: dict[str, str], *extra: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("w") as out:  # a file, not a pipe: a chatty server never blocks on a full pipe
            self.proc = subprocess.Popen([sys.executable, "-m", "timemory", "serve", "--port", str(self.port),
                                          *extra], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the API server exited: {log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code in (200, 401):
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError("the API server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(scripted_model) as server:
        yield server


@pytest.fixture(scope="module")
def api(model: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """An open server (no API key exists): every call names its user."""
    folder = tmp_path_factory.mktemp("api")
    server = Server(environment(f"sqlite:///{folder}/api.db", model.base_url), log=folder / "server.log")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client
    server.stop()


def error(r: httpx.Response, status: int, code: str | None = None) -> str:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert set(body) == {"code", "message"} and body["message"]
    if code is not None:
        assert body["code"] == code, body
    return str(body["message"])


def test_memories_crud_filters_history_and_state(api: httpx.Client) -> None:
    u = {"user_id": "ana"}
    made = [api.post("/v1/memories", params=u, json={"content": f"Ana fact {i}", "type": t}).json()
            for i, t in enumerate(["personal", "preference", "preference"])]
    assert all(m["id"] and m["user_id"] == "ana" for m in made)
    page = api.get("/v1/memories", params={**u, "type": "preference", "limit": 1}).json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["items"][0]["type"] == "preference"
    assert api.get("/v1/memories", params={**u, "q": "fact 0"}).json()["total"] == 1
    one = api.get(f"/v1/memories/{made[0]['id']}", params=u).json()
    edited = api.patch(f"/v1/memories/{one['id']}", params=u,
                       json={"content": "Ana lives in Porto", "seen_updated_at": one["updated_at"]})
    assert edited.status_code == 200 and edited.json()["content"] == "Ana lives in Porto"
    stale = api.patch(f"/v1/memories/{one['id']}", params=u,
                      json={"content": "Ana lives in Faro", "seen_updated_at": one["updated_at"]})
    error(stale, 409, "conflict")
    error(api.patch(f"/v1/memories/{one['id']}", params=u, json={"content": "   "}), 422, "invalid_input")
    history = api.get(f"/v1/memories/{one['id']}/history", params=u).json()
    assert [e["event"] for e in history] == ["ADD", "EDIT"]
    state = api.get("/v1/state", params={**u, "at": one["created_at"]}).json()
    assert [m["content"] for m in state if m["id"] == one["id"]] == ["Ana fact 0"]  # as it was then
    hits = api.post("/v1/search", params=u, json={"query": "Where does Ana live?", "limit": 1}).json()
    assert hits[0]["memory"]["content"] == "Ana lives in Porto" and 0 < hits[0]["score"] <= 1
    assert api.delete(f"/v1/memories/{one['id']}", params=u).status_code == 204
    error(api.get(f"/v1/memories/{one['id']}", params=u), 404, "not_found")


def test_bad_and_hostile_input_gets_the_one_error_shape(api: httpx.Client) -> None:
    u = {"user_id": "ana"}
    error(api.post("/v1/memories", params=u, json={"content": "x", "type": "hobby"}), 422, "invalid_input")
    error(api.post("/v1/memories", params=u, json={"content": "x" * 40_000}), 422, "invalid_input")
    error(api.post("/v1/memories", params=u, content=b"{not json"), 422, "invalid_input")
    error(api.post("/v1/memories", params=u, content=b'{"content": "\xff\xfe"}',
                   headers={"Content-Type": "application/json"}), 422, "invalid_input")  # not even UTF-8
    error(api.post("/v1/memories", params=u, content=b"x" * (17 * 1024 * 1024)), 413, "too_large")
    error(api.get("/v1/state", params={**u, "at": "0.5"}), 422, "invalid_input")  # not read as 1970
    assert api.get("/v1/state", params={**u, "at": "2020-01-01"}).json() == []
    error(api.get("/v1/memories", params={**u, "limit": -1}), 422, "invalid_input")
    error(api.get("/v1/memories"), 422, "invalid_input")  # an open server needs to be told the user
    error(api.get("/v1/memories/' OR 1=1 --", params=u), 404, "not_found")
    error(api.get("/v1/nothing-here"), 404, "not_found")
    error(api.post("/v1/process", params=u, json={"messages": [{"role": "robot", "content": "hi"}]}), 422)
    twice = [{"role": "user", "content": "I keep bees.", "id": "m1"}, {"role": "user", "content": "Hi", "id": "m1"}]
    assert "same id (m1)" in error(api.post("/v1/process", params=u, json={"messages": twice}), 422,
                                   "invalid_input")
    hostile = "Robert'); DROP TABLE memories;-- <script>alert(1)</script> 👩‍🚀"
    made = api.post("/v1/memories", params=u, json={"content": hostile}).json()
    assert api.get(f"/v1/memories/{made['id']}", params=u).json()["content"] == hostile
    assert api.get("/v1/memories", params={**u, "q": "%' OR '1'='1"}).json()["total"] == 0


def test_process_is_queued_and_its_trace_can_be_read(api: httpx.Client, model: FakeOpenAIServer) -> None:
    u = {"user_id": "ben"}
    exchange = {"messages": [{"role": "user", "content": "I keep bees."}, {"role": "assistant", "content": "Nice!"}]}
    queued = api.post("/v1/process", params=u, json=exchange)
    assert queued.status_code == 202 and queued.json()["job"]["status"] in ("pending", "running", "done")
    job_id = queued.json()["job"]["id"]
    deadline = time.monotonic() + 60
    while (job := api.get(f"/v1/jobs/{job_id}", params=u).json())["job"]["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job["job"]["status"] == "done" and job["result"]["facts"][0]["content"] == "The user said: I keep bees."
    waited = api.post("/v1/process", params={**u, "wait": "true"}, json={"messages": [
        {"role": "user", "content": "I read novels."}]})
    assert waited.status_code == 200 and waited.json()["job"]["status"] == "done"
    late = api.post("/v1/process", params={**u, "wait": "true", "timeout": 0.001}, json={"messages": [
        {"role": "user", "content": "I bake bread."}]})  # not finished within the wait: accepted, not done
    assert late.status_code == 202 and late.json()["job"]["status"] in ("pending", "running")
    assert [c["event"] for c in waited.json()["result"]["changes"]] == ["ADD"]
    assert {j["id"] for j in api.get("/v1/jobs", params=u).json()} >= {job_id}

    said = api.post("/v1/search", params=u, json={"query": "bees", "scope": "episodes", "limit": 2}).json()
    assert said[0]["kind"] == "episode" and said[0]["memory"] is None
    assert said[0]["episode"]["content"] == "I keep bees." and said[0]["episode"]["speaker"] == "user"
    assert [m["content"] for m in said[0]["episode"]["learnt"]] == ["The user said: I keep bees."]
    both = api.post("/v1/search", params=u, json={"query": "bees", "scope": "all", "limit": 3}).json()
    memory = next(h for h in both if h["kind"] == "memory")
    assert [e["content"] for e in memory["sources"]] == ["I keep bees.", "Nice!"]  # its exchange, where it was said
    error(api.post("/v1/search", params=u, json={"query": "bees", "scope": "everything"}), 422, "invalid_input")
    others = api.post("/v1/search", params={"user_id": "ana"}, json={"query": "bees", "scope": "all"}).json()
    assert all(h["kind"] == "memory" or h["episode"]["user_id"] == "ana" for h in others)
    assert "I keep bees." not in json.dumps(others)
    error(api.get(f"/v1/jobs/{job_id}", params={"user_id": "ana"}), 404, "not_found")


def test_a_reflection_is_queued_and_outdates_what_a_later_memory_replaced(api: httpx.Client) -> None:
    u = {"user_id": "bea"}
    for text in ("The user keeps bees in the garden.", "The user keeps bees on the roof now."):
        assert api.post("/v1/memories", params=u, json={"content": text, "type": "activity"}).status_code == 201
    queued = api.post("/v1/reflect", params=u, json={"max_groups": 5})
    assert queued.status_code == 202 and queued.json()["job"]["kind"] == "reflect"
    job_id = queued.json()["job"]["id"]
    deadline = time.monotonic() + 60
    while (job := api.get(f"/v1/jobs/{job_id}", params=u).json())["job"]["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job["job"]["status"] == "done" and job["result"]["kind"] == "reflection"
    assert [(c["event"], c["content"]) for c in job["result"]["changes"]] == [
        ("OUTDATE", "The user keeps bees in the garden.")]
    error(api.post("/v1/reflect", params=u, json={"max_groups": 0}), 422, "invalid_input")


def test_sessions_and_streamed_chat(api: httpx.Client) -> None:
    u = {"user_id": "cleo"}
    session = api.post("/v1/sessions", params=u, json={"title": "Trip"}).json()
    assert api.patch(f"/v1/sessions/{session['id']}", params=u, json={"title": "Lisbon"}).json()["title"] == "Lisbon"
    events: list[tuple[str, str]] = []
    with api.stream("POST", "/v1/chat", params=u, json={"message": "I'm flying to Lisbon.",
                                                        "session_id": session["id"]}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        kind = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((kind, line[len("data: "):]))
    kinds = [k for k, _ in events]
    assert kinds[0] == "session" and kinds.count("token") > 1 and kinds[-2:] == ["reply", "trace"]
    assert kinds.index("reply") > max(i for i, k in enumerate(kinds) if k == "token")
    assert "".join(json.loads(d) for k, d in events if k == "token").strip() == "Glad to hear it, tell me more!"
    trace = json.loads(events[-1][1])
    assert trace["facts"][0]["content"] == "The user said: I'm flying to Lisbon."
    messages = api.get(f"/v1/sessions/{session['id']}/messages", params=u).json()
    assert [m["role"] for m in messages] == ["user", "assistant"]
    error(api.post("/v1/chat", params=u, json={"message": "  "}), 422, "invalid_input")
    error(api.post("/v1/chat", params={"user_id": "ana"}, json={"message": "hi", "session_id": session["id"]}), 404)
    assert api.delete(f"/v1/sessions/{session['id']}", params=u).status_code == 204
    assert api.get("/v1/sessions", params=u).json() == []


def test_service_endpoints(api: httpx.Client) -> None:
    assert api.get("/healthz").json()["status"] == "ok"
    api.get("/v1/memories", params={"user_id": "ana"})
    metrics = api.get("/metrics").text
    assert 'timemory_http_requests_total{method="GET",route="/v1/memories",status="200"}' in metrics
    assert "timemory_http_request_seconds_bucket" in metrics and 'timemory_jobs{status="done"}' in metrics
    assert "timemory_pipeline_runs_total" in metrics and "timemory_llm_calls_total" in metrics
    assert api.get("/docs").status_code == 200 and "/v1/chat" in api.get("/openapi.json").json()["paths"]
    spec = api.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"  # the docs' Authorize button
    process = spec["paths"]["/v1/process"]["post"]
    assert process["security"] == [{"HTTPBearer": []}]
    assert {"200", "202", "401", "404", "422"} <= set(process["responses"])
    assert process["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    assert "HTTPValidationError" not in json.dumps(spec)  # errors are documented in the shape they are sent
    assert {u["id"] for u in api.get("/v1/users").json()} >= {"ana", "ben"}
    assert api.post("/v1/users", json={"user_id": "dora"}).status_code == 201
    assert api.delete("/v1/users/dora").status_code == 204
    error(api.delete("/v1/users/dora"), 404, "not_found")
    for bad in ("bad id/../x", "../etc", "a b", "-flag", "x" * 129):
        error(api.post("/v1/users", json={"user_id": bad}), 422, "invalid_input")
        error(api.get("/v1/memories", params={"user_id": bad}), 422, "invalid_input")


def metric(text: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text exposition (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if not line.startswith("#") and sample.split("{")[0] == name:
            got = ",".join(sorted(sample.partition("{")[2].rstrip("}").split(","))) if "{" in sample else ""
            if got == want:
                return float(value)
    return 0.0


def test_metrics_time_a_chat_stream_whole_and_count_its_model_calls_and_runs(api: httpx.Client) -> None:
    u = {"user_id": "erin"}
    before = api.get("/metrics").text
    started = time.perf_counter()
    with api.stream("POST", "/v1/chat", params=u, json={"message": "Tell me slowly about tides."}) as r:
        lines = list(r.iter_lines())
    took = time.perf_counter() - started
    assert "event: trace" in lines and took >= 1.0
    trace = json.loads(lines[lines.index("event: trace") + 1].removeprefix("data: "))
    after = api.get("/metrics").text
    route = {"route": "/v1/chat"}
    assert metric(after, "timemory_http_request_seconds_count", **route) - metric(
        before, "timemory_http_request_seconds_count", **route) == 1
    timed = metric(after, "timemory_http_request_seconds_sum", **route) - metric(
        before, "timemory_http_request_seconds_sum", **route)
    # the stream's whole length (the reply alone took a second), not its headers; the server's clock stops after
    # the last byte is written, which the client may have read a few microseconds before
    assert 1.0 <= timed <= took + 0.05
    # the reply and the title (a new session) are chat calls; learning is a run with calls of its own
    calls = {p: metric(after, "timemory_llm_calls_total", purpose=p) - metric(
        before, "timemory_llm_calls_total", purpose=p) for p in ("chat", "exchange")}
    assert trace["llm_calls"] >= 1 and calls == {"chat": 2, "exchange": trace["llm_calls"]}
    assert metric(after, "timemory_pipeline_runs_total", kind="exchange", status="ok") - metric(
        before, "timemory_pipeline_runs_total", kind="exchange", status="ok") == 1
