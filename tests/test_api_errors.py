"""The API's errors say what a person can act on."""

from __future__ import annotations

from fastapi.testclient import TestClient

from timemory import TiMem
from timemory.service import create_app


def test_a_body_that_is_not_json_says_where(sqlite_store, embedder, user: str) -> None:
    tm = TiMem(sqlite_store, embedder)
    with TestClient(create_app(tm, worker_threads=0)) as client:
        answer = client.post("/v1/memories", params={"user_id": user}, content=b'{"content": "x",\n  "type": }',
                             headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["error"] == {"code": "invalid_input", "message": "The request body is not valid JSON "
                                      "(line 2, column 11: Expecting value)."}
