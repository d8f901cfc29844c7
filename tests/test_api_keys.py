"""API keys and tenants, against a real ``python -m timemory serve`` process with keys: keys are required and stored
hashed, a user key acts for its own user only, a deleted user or a revoked key ends at once, and the service routes
need an admin key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from doubles import FakeOpenAIServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_api import Server, cli, environment, error, scripted_model

from timemory.providers import free_port


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(scripted_model) as server:
        yield server


@pytest.fixture(scope="module")
def keyed(model: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with keys for alice, bob and an admin; alice and bob each have memories and a session."""
    folder = tmp_path_factory.mktemp("keys")
    env = environment(f"sqlite:///{folder}/keys.db", model.base_url)
    tokens = {who: cli(env, "keys", "create", *(["--admin"] if who == "admin" else ["--user", who])).stdout.strip()
              for who in ("alice", "bob", "admin")}
    assert all(t.startswith("tmk_") for t in tokens.values())
    server = Server(env, log=folder / "server.log")
    clients = {who: httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {t}"})
               for who, t in tokens.items()}
    ids: dict[str, dict[str, str]] = {}
    for who in ("alice", "bob"):
        c = clients[who]
        ids[who] = {"memory": c.post("/v1/memories", json={"content": f"{who} secret"}).json()["id"],
                    "session": c.post("/v1/sessions", json={"title": f"{who} chat"}).json()["id"]}
    yield {"env": env, "url": server.url, "clients": clients, "ids": ids, "tokens": tokens}
    for c in clients.values():
        c.close()
    server.stop()


def test_keys_are_required_and_stored_hashed(keyed: dict[str, Any]) -> None:
    error(httpx.get(f"{keyed['url']}/v1/memories"), 401, "unauthorized")
    error(httpx.post(f"{keyed['url']}/v1/memories", content=b"{not json"), 401, "unauthorized")  # the key first
    error(httpx.get(f"{keyed['url']}/v1/memories", headers={"Authorization": "Bearer tmk_nope_nope"}), 401)
    listed = cli(keyed["env"], "keys", "list").stdout
    assert "alice" in listed and "admin" in listed
    assert not any(t.split("_", 2)[2] in listed for t in keyed["tokens"].values())
    db = keyed["env"]["TIMEMORY_DATABASE_URL"].removeprefix("sqlite:///")
    assert not any(t.split("_", 2)[2].encode() in Path(db).read_bytes() for t in keyed["tokens"].values())


def test_deleting_a_user_ends_them_everywhere(keyed: dict[str, Any]) -> None:
    token = cli(keyed["env"], "keys", "create", "--user", "carol").stdout.strip()
    carol = httpx.Client(base_url=keyed["url"], timeout=60, headers={"Authorization": f"Bearer {token}"})
    admin = keyed["clients"]["admin"]
    assert carol.post("/v1/memories", json={"content": "I work as a nurse in Porto."}).status_code == 201
    assert carol.post("/v1/process", json={"messages": [{"role": "user", "content": "Porto again."}]}).status_code \
        == 202
    assert admin.delete("/v1/users/carol").status_code == 204
    # the key stopped working at once; nothing of carol is left to read, and nothing brings her back
    error(carol.get("/v1/jobs"), 401, "unauthorized")
    error(carol.post("/v1/memories", json={"content": "back again"}), 401, "unauthorized")
    assert "carol" not in {u["id"] for u in admin.get("/v1/users").json()}
    assert admin.get("/v1/jobs", params={"user_id": "carol"}).json() == []
    assert "carol" not in cli(keyed["env"], "keys", "list").stdout
    carol.close()


def test_a_user_key_acts_for_its_own_user_only(keyed: dict[str, Any]) -> None:
    alice, admin = keyed["clients"]["alice"], keyed["clients"]["admin"]
    assert [m["content"] for m in alice.get("/v1/memories").json()["items"]] == ["alice secret"]
    error(alice.get("/v1/memories", params={"user_id": "bob"}), 404, "not_found")
    error(alice.get("/v1/users"), 403, "forbidden")
    assert {u["id"] for u in admin.get("/v1/users").json()} >= {"alice", "bob"}
    assert admin.get("/v1/memories", params={"user_id": "bob"}).json()["items"][0]["content"] == "bob secret"
    error(admin.get("/v1/memories"), 422, "invalid_input")  # an admin says which user


ENDPOINTS = [("GET", "/v1/memories/{memory}"), ("PATCH", "/v1/memories/{memory}"),
             ("DELETE", "/v1/memories/{memory}"), ("GET", "/v1/memories/{memory}/history"),
             ("GET", "/v1/sessions/{session}/messages"), ("PATCH", "/v1/sessions/{session}"),
             ("DELETE", "/v1/sessions/{session}"), ("GET", "/v1/memories"), ("POST", "/v1/search"),
             ("GET", "/v1/sessions"), ("GET", "/v1/jobs"), ("POST", "/v1/memories")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(endpoint=st.sampled_from(ENDPOINTS), as_param=st.sampled_from([None, "bob", "alice"]))
def test_alice_s_key_never_reads_or_changes_bob_s_rows(keyed: dict[str, Any], endpoint: tuple[str, str],
                                                       as_param: str | None) -> None:
    alice, admin = keyed["clients"]["alice"], keyed["clients"]["admin"]
    method, path = endpoint
    url = path.format(**keyed["ids"]["bob"])
    body = {"query": "secret"} if "search" in path else {"content": "changed by alice", "title": "changed"}
    r = alice.request(method, url, params={"user_id": as_param} if as_param else None,
                      json=body if method in ("POST", "PATCH") else None)
    assert "bob secret" not in r.text and "bob chat" not in r.text
    if "{" in path or as_param == "bob":
        error(r, 404, "not_found")
    bob_memories = admin.get("/v1/memories", params={"user_id": "bob"}).json()["items"]
    assert [m["content"] for m in bob_memories] == ["bob secret"]
    assert [s["title"] for s in admin.get("/v1/sessions", params={"user_id": "bob"}).json()] == ["bob chat"]


def test_service_routes_need_an_admin_key_where_keys_exist(keyed: dict[str, Any]) -> None:
    url, clients = keyed["url"], keyed["clients"]
    for path in ("/metrics", "/docs", "/openapi.json"):
        error(httpx.get(f"{url}{path}"), 401, "unauthorized")
        error(clients["alice"].get(path), 401, "unauthorized")
        assert clients["admin"].get(path).status_code == 200
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}  # alive, naming neither database nor model
    assert "database" in clients["admin"].get("/healthz").json()


def test_a_setting_opens_the_service_routes(tm_with) -> None:
    from fastapi.testclient import TestClient

    from timemory.service import create_app

    tm = tm_with(None)
    tm.keys.create(user_id="gil")
    for opened, status in ((True, 200), (False, 401)):
        with TestClient(create_app(tm, worker_threads=0, service_routes_open=opened)) as client:
            assert client.get("/metrics").status_code == status
            assert client.get("/openapi.json").status_code == status
            assert ("database" in client.get("/healthz").json()) is opened


def test_a_revoked_key_stops_working(keyed: dict[str, Any]) -> None:
    env = keyed["env"]
    token = cli(env, "keys", "create", "--user", "carl").stdout.strip()
    c = httpx.Client(base_url=keyed["url"], headers={"Authorization": f"Bearer {token}"})
    assert c.get("/v1/memories").status_code == 200
    assert cli(env, "keys", "revoke", token.split("_")[1]).returncode == 0
    error(c.get("/v1/memories"), 401, "unauthorized")
    assert cli(env, "keys", "revoke", "nosuchkey").returncode == 2


def test_without_a_key_the_server_only_binds_to_loopback(model: FakeOpenAIServer, tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path}/open.db", model.base_url)
    out = cli(env, "serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert out.returncode == 2 and "Refusing to listen on 0.0.0.0 with no API key" in out.stderr
