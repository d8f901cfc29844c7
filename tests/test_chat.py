"""The chat service with an LLM double: tokens stream, messages are saved, memories are used, the pipeline runs."""

from __future__ import annotations

import pytest
from doubles import ScriptedLLMDouble

from timemory import TiMem
from timemory.chat import ChatService
from timemory.errors import NotFoundError, ValidationError


@pytest.fixture
def chat(sqlite_store, embedder) -> ChatService:  # type: ignore[no-untyped-def]
    llm = ScriptedLLMDouble(facts=[{"content": "The user is training for a marathon.", "type": "activity"}],
                            reply="Good luck with the training!")
    return ChatService(TiMem(sqlite_store, embedder, llm), llm)


def test_turn_streams_saves_and_learns(chat: ChatService, user: str) -> None:
    chat.memory.add(user, "The user lives in Porto.", "personal")
    turn = chat.chat_with_memory_stream(user, None, "I'm training for a marathon in Porto!")
    tokens = list(turn)
    assert len(tokens) > 1 and "".join(tokens).strip() == "Good luck with the training!"
    assert [h.memory.content for h in turn.memories_used][:1] == ["The user lives in Porto."]
    assert "The user lives in Porto." in turn._service.llm.prompts[0][0]["content"]  # type: ignore[attr-defined]
    msgs = chat.messages(user, turn.session_id)
    assert [(m.role, m.content) for m in msgs] == [("user", "I'm training for a marathon in Porto!"),
                                                   ("assistant", "Good luck with the training!")]
    assert turn.title == "A scripted title" and chat.list_sessions(user)[0].title == "A scripted title"
    assert turn.pipeline is not None and turn.pipeline.status == "ok"
    added = chat.memory.get_memory(turn.pipeline.changes[0].memory_id, user)
    assert added.source_message_ids == [m.id for m in msgs] and added.source_session_id == turn.session_id


def test_second_turn_keeps_history_and_title(chat: ChatService, user: str) -> None:
    first = chat.chat_with_memory_stream(user, None, "hello")
    list(first)
    second = chat.chat_with_memory_stream(user, first.session_id, "and again", process=False)
    list(second)
    assert second.title is None and second.pipeline is None
    prompt = chat.llm.prompts[-1]  # type: ignore[attr-defined]
    assert [m["content"] for m in prompt[1:]][:2] == ["hello", "Good luck with the training!"]
    assert chat.process_turn(second).status == "ok"


def test_sessions_rename_delete_and_errors(chat: ChatService, user: str) -> None:
    s = chat.create_session(user)
    assert chat.rename_session(user, s.id, "Trip").title == "Trip"
    with pytest.raises(ValidationError):
        chat.rename_session(user, s.id, "  ")
    with pytest.raises(ValidationError):
        chat.chat_with_memory_stream(user, s.id, "   ")
    with pytest.raises(NotFoundError):
        chat.chat_with_memory_stream("someone-else", s.id, "hi")
    chat.delete_session(user, s.id)
    assert chat.list_sessions(user) == []
