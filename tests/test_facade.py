"""The public API is one closed facade: ``TiMem`` and what it hands out, with ``user_id`` keyword-only everywhere."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import timemory
from timemory import ChatService, TiMem
from timemory.core import Sessions, Users

ROOT = Path(__file__).resolve().parents[1]
# tests may reach internals (they check them); code that uses TiMemory may not
OUTSIDE = [*ROOT.glob("dashboard/*.py"), *ROOT.glob("pages/*.py"), *ROOT.glob("bench/*.py"), ROOT / "streamlit_app.py"]


def reaches(source: str) -> list[str]:
    """Line and attribute of every ``.store`` / ``.embedder`` access in the source."""
    return sorted(f"{node.lineno}:.{node.attr}" for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Attribute) and node.attr in ("store", "embedder"))


def test_nothing_outside_the_package_reaches_the_engine_s_backends() -> None:
    assert reaches("tm.store.list_users()\nx = adapter.memory().embedder.name\n") == ["1:.store", "2:.embedder"]
    offenders = {str(path.relative_to(ROOT)): found for path in OUTSIDE if (found := reaches(path.read_text()))}
    assert len(OUTSIDE) > 30 and offenders == {}


@pytest.mark.parametrize("cls", [TiMem, Sessions, Users, ChatService])
def test_user_id_is_keyword_only_on_every_public_call(cls: type) -> None:
    checked = 0
    for name, fn in inspect.getmembers(cls, inspect.isfunction):
        if name.startswith("_"):
            continue
        params = inspect.signature(fn).parameters
        if "user_id" in params:
            assert params["user_id"].kind is inspect.Parameter.KEYWORD_ONLY, f"{cls.__name__}.{name}"
            checked += 1
    assert checked >= (15 if cls is TiMem else 1)


def test_exported_names() -> None:
    expected = {"TiMem", "Settings", "ChatService", "ChatExchange", "ChatError", "Memory", "MemoryEvent", "SearchHit",
                "PipelineResult", "ChatSession", "Message", "TiMemoryError", "InvalidInputError", "NotFoundError",
                "ConflictError", "ConfigurationError", "DatabaseError", "LLMError", "LLMOutputError",
                "EmbeddingError", "EmbeddingMismatchError", "ConcurrentUpdateError"}
    assert expected <= set(timemory.__all__)
    assert all(getattr(timemory, name) is not None for name in timemory.__all__)
    assert not {n for n in timemory.__all__ if n.startswith("_")}


def test_the_facade_hands_out_sessions_users_and_chat(sqlite_store, embedder) -> None:
    from doubles import ScriptedLLMDouble

    from timemory import ConfigurationError

    with pytest.raises(ConfigurationError):
        _ = TiMem(sqlite_store, embedder).chat  # no LLM, no chat
    tm = TiMem(sqlite_store, embedder, ScriptedLLMDouble())
    session = tm.sessions.create(user_id="ana", title="Trip")
    assert [s.id for s in tm.sessions.list(user_id="ana")] == [session.id]
    assert "ana" in {u.id for u in tm.users.list()}
    turn = tm.chat.chat_with_memory_stream("hello", user_id="ana", session_id=session.id)
    list(turn)
    assert [m.role for m in tm.sessions.messages(session.id, user_id="ana")] == ["user", "assistant"]
    assert tm.chat is tm.chat
