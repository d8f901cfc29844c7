"""The MCP server (``python -m timemory mcp``) driven by the official SDK's client over stdio."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from doubles import FakeOpenAIServer
from mcp import Client, StdioServerParameters
from test_api import ROOT, environment, scripted_model

from timemory import Settings, TiMem


def payload(result: Any) -> Any:
    assert not result.is_error, result
    if result.structured_content is not None:
        content = result.structured_content
        return content.get("result", content) if isinstance(content, dict) and set(content) == {"result"} else content
    return json.loads(result.content[0].text)


def test_tools_act_on_the_configured_user_only(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/mcp.db"
    with FakeOpenAIServer(scripted_model) as model:
        env = environment(db, model.base_url)
        other = TiMem.from_settings(Settings(_env_file=None, database_url=db, openai_api_key="test",  # type: ignore[call-arg]
                                             openai_base_url=model.base_url))
        secret = other.add("Bob's secret plan.", user_id="bob", type="plan")
        params = StdioServerParameters(command=sys.executable, args=["-m", "timemory", "mcp", "--user", "ana"],
                                       env=env, cwd=str(ROOT))

        async def session() -> dict[str, Any]:
            out: dict[str, Any] = {}
            async with Client(params) as client:
                out["tools"] = {t.name for t in (await client.list_tools()).tools}
                added = payload(await client.call_tool("add_memory", {"content": "The user lives in Porto.",
                                                                      "type": "personal"}))
                out["added"] = added
                out["search"] = payload(await client.call_tool("search_memories", {"query": "Where does Ana live?"}))
                out["updated"] = payload(await client.call_tool("update_memory", {
                    "memory_id": added["id"], "status": "outdated"}))
                out["learnt"] = payload(await client.call_tool("process_exchange", {
                    "user_message": "I moved to Lisbon.", "assistant_message": "Exciting!", "wait": True}))
                out["list"] = payload(await client.call_tool("list_memories", {}))
                out["said"] = payload(await client.call_tool("search_memories", {"query": "moving to Lisbon",
                                                                                 "scope": "episodes"}))
                out["bob_search"] = payload(await client.call_tool("search_memories", {"query": "secret plan",
                                                                                       "include_outdated": True}))
                out["bob_update"] = await client.call_tool("update_memory", {"memory_id": secret.id,
                                                                             "content": "changed"})
                out["bob_delete"] = await client.call_tool("delete_memory", {"memory_id": secret.id})
                out["bad_type"] = await client.call_tool("add_memory", {"content": "x", "type": "hobby"})
                out["deleted"] = payload(await client.call_tool("delete_memory", {"memory_id": added["id"]}))
            return out

        out = asyncio.run(session())
    assert out["tools"] == {"add_memory", "search_memories", "list_memories", "update_memory", "delete_memory",
                            "process_exchange"}
    assert out["search"][0]["content"] == "The user lives in Porto." and out["search"][0]["score"] > 0.3
    assert out["updated"]["status"] == "outdated"
    assert out["learnt"]["status"] == "done" and out["learnt"]["facts"] == ["The user said: I moved to Lisbon."]
    assert out["list"]["total"] == 2
    said = out["said"][0]
    assert (said["kind"], said["speaker"], said["content"]) == ("episode", "user", "I moved to Lisbon.")
    assert said["learnt"] == ["The user said: I moved to Lisbon."]
    assert all("Bob" not in m["content"] for m in out["bob_search"])  # another user's rows never show
    for refused in (out["bob_update"], out["bob_delete"], out["bad_type"]):
        assert refused.is_error
    assert "No memory" in out["bob_update"].content[0].text
    assert out["deleted"].startswith("Deleted memory")
    assert other.get_memory(secret.id, user_id="bob").content == "Bob's secret plan."  # untouched


@pytest.mark.parametrize(("raised", "seen"), [
    (BaseExceptionGroup("tasks", [KeyboardInterrupt()]), KeyboardInterrupt),
    (BaseExceptionGroup("tasks", [KeyboardInterrupt(), OSError("pipe closed")]), KeyboardInterrupt),
    (BaseExceptionGroup("tasks", [OSError("pipe closed")]), BaseExceptionGroup),
])
def test_a_stop_inside_the_servers_tasks_is_a_plain_interrupt(monkeypatch: pytest.MonkeyPatch, raised, seen) -> None:
    """A stop signal lands in whichever task of the stdio server runs; its task group wraps the interrupt. The command
    must see a KeyboardInterrupt (and report "interrupted", not a traceback); other failures stay as they came."""
    from timemory.service import _mcp

    class Server:
        def run(self, transport: str) -> None:
            raise raised

    monkeypatch.setattr(_mcp.TiMem, "from_settings", staticmethod(lambda: None))
    monkeypatch.setattr(_mcp, "build_server", lambda tm, user_id: Server())
    with pytest.raises(seen):
        _mcp.run("ana")
