"""The chat service with an LLM double: tokens stream, messages are saved, memories are used, the pipeline runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from doubles import ScriptedLLMDouble

from timemory import ChatService, GivenPolicy, InvalidInputError, NotFoundError, TiMem


@pytest.fixture
def memory(sqlite_store, embedder) -> TiMem:
    llm = ScriptedLLMDouble(facts=[{"content": "The user is training for a marathon.", "type": "activity"}],
                            reply="Good luck with the training!")
    return TiMem(sqlite_store, embedder, llm)


@pytest.fixture
def chat(memory: TiMem) -> ChatService:
    return memory.chat


def test_turn_streams_saves_and_learns(chat: ChatService, user: str, memory: TiMem) -> None:
    memory.add("The user lives in Porto.", user_id=user, type="personal")
    turn = chat.chat_with_memory_stream("I'm training for a marathon in Porto!", user_id=user, session_id=None)
    tokens = list(turn)
    assert len(tokens) > 1 and "".join(tokens).strip() == "Good luck with the training!"
    assert [h.memory.content for h in turn.given][:1] == ["The user lives in Porto."]
    assert "The user lives in Porto." in turn._service.llm.prompts[0][0]["content"]  # type: ignore[attr-defined]
    msgs = memory.sessions.messages(turn.session_id, user_id=user)
    assert [(m.role, m.content) for m in msgs] == [("user", "I'm training for a marathon in Porto!"),
                                                   ("assistant", "Good luck with the training!")]
    # the title is asked for as plain text (the double answers every plain request with its reply)
    assert turn.title == "Good luck with the training!"
    assert memory.sessions.list(user_id=user)[0].title == turn.title
    assert turn.pipeline is not None and turn.pipeline.status == "ok"
    added = memory.get_memory(turn.pipeline.changes[0].memory_id, user_id=user)
    assert added.source_message_ids == [m.id for m in msgs] and added.source_session_id == turn.session_id


def test_second_turn_keeps_history_and_title(chat: ChatService, user: str) -> None:
    first = chat.chat_with_memory_stream("hello", user_id=user, session_id=None)
    list(first)
    second = chat.chat_with_memory_stream("and again", user_id=user, session_id=first.session_id, process=False)
    list(second)
    assert second.title is None and second.pipeline is None
    prompt = chat.llm.prompts[-1]  # type: ignore[attr-defined]
    assert [m["content"] for m in prompt[1:]][:2] == ["hello", "Good luck with the training!"]
    assert chat.process_exchange(second).status == "ok"


def test_sessions_rename_delete_and_errors(chat: ChatService, user: str, memory: TiMem) -> None:
    s = memory.sessions.create(user_id=user)
    assert memory.sessions.rename(s.id, user_id=user, title="Trip").title == "Trip"
    with pytest.raises(InvalidInputError):
        memory.sessions.rename(s.id, user_id=user, title="  ")
    with pytest.raises(InvalidInputError):
        chat.chat_with_memory_stream("   ", user_id=user, session_id=s.id)
    with pytest.raises(NotFoundError):
        chat.chat_with_memory_stream("hi", user_id="someone-else", session_id=s.id)
    memory.sessions.delete(s.id, user_id=user)
    assert memory.sessions.list(user_id=user) == []


def test_background_turns_sent_back_to_back_are_both_answered_and_learnt_in_one_session(
    chat: ChatService, user: str, memory: TiMem) -> None:
    first = chat.submit("I'm training for a marathon.", user_id=user, session_id=None)
    second = chat.submit("And I swim on Fridays.", user_id=user,
                         session_id=first.session_id)  # before the first is answered
    assert second.session_id == first.session_id
    assert [m.content for m in memory.sessions.messages(first.session_id, user_id=user)][:2] == [
        "I'm training for a marathon.", "And I swim on Fridays."]  # both saved before any reply
    for turn in (first, second):
        assert turn.wait(timeout=60), turn.state
        assert turn.state == "done" and turn.error is None
        assert "".join(turn.follow()).strip() == "Good luck with the training!"  # a late reader gets every token
    msgs = memory.sessions.messages(first.session_id, user_id=user)
    assert sorted(m.role for m in msgs) == ["assistant", "assistant", "user", "user"]
    # the second reply was asked with the first exchange as history, not with its own message twice
    second_prompt = next(p for p in chat.llm.prompts if p[-1]["content"] == "And I swim on Fridays.")  # type: ignore[attr-defined]
    assert [m["content"] for m in second_prompt[1:]] == [
        "I'm training for a marathon.", "Good luck with the training!", "And I swim on Fridays."]
    runs = chat.runs_by_message(first.session_id, user_id=user)
    for turn in (first, second):
        assert turn.assistant_message is not None and turn.user_message is not None
        assert runs[turn.assistant_message.id].source_message_ids == [turn.user_message.id,
                                                                     turn.assistant_message.id]
    assert chat.pending(first.session_id) == []
    assert len(memory.sessions.list(user_id=user)) == 1


def test_a_failing_reply_keeps_the_message_and_reports_the_error(sqlite_store, embedder, user: str) -> None:
    from timemory import LLMError

    class BrokenStream(ScriptedLLMDouble):
        def stream(self, messages, *, usage=None):
            yield "Half"
            raise LLMError("the model server went away")

    llm = BrokenStream()
    memory = TiMem(sqlite_store, embedder, llm)
    chat = memory.chat
    turn = chat.submit("Remember that I like figs.", user_id=user, session_id=None)
    assert turn.wait(timeout=30) and turn.state == "failed"
    assert "went away" in (turn.error or "") and "Your message was saved" in (turn.error or "")
    assert "".join(turn.follow()) == "Half"
    assert [m.content for m in memory.sessions.messages(turn.session_id,
                                                             user_id=user)] == ["Remember that I like figs."]


def test_memories_below_the_relevance_floor_are_not_given_to_the_reply(
        chat: ChatService, user: str, memory: TiMem) -> None:
    memory.add("The user lives in Porto.", user_id=user, type="personal")
    memory.add("The user's favourite colour is green.", user_id=user, type="preference")
    chat.given = GivenPolicy(min_similarity=0.3)
    turn = chat.chat_with_memory_stream("What is the weather like in Porto?", user_id=user, session_id=None,
                                        process=False)
    list(turn)
    assert [h.memory.content for h in turn.given] == ["The user lives in Porto."]
    assert all(h.scores.vector >= 0.3 for h in turn.given)
    assert "green" not in chat.llm.prompts[-2][0]["content"]  # type: ignore[attr-defined]


def test_an_earlier_message_supports_the_reply_when_no_memory_holds_it(
        chat: ChatService, user: str, memory: TiMem) -> None:
    """Extraction learnt nothing of the locker; the message that said it is given to the reply, with its date, and
    neither this message nor the history the prompt already carries is given again."""
    old = memory.sessions.create(user_id=user, title="Pool")
    memory.sessions.add_messages([{"id": "locker", "role": "user", "content": "My locker at the pool is number 4512.",
                                   "created_at": datetime(2024, 3, 5, 10, tzinfo=UTC)}], user_id=user,
                                 session_id=old.id)
    chat.given = GivenPolicy(messages=2, message_tokens=300)
    turn = chat.chat_with_memory_stream("What was my locker number at the pool?", user_id=user, session_id=None,
                                        process=False)
    list(turn)
    supporting = [h for h in turn.given if h.kind == "episode"]
    assert [h.id for h in supporting] == ["locker"]
    system = chat.llm.prompts[-2][0]["content"]  # type: ignore[attr-defined]
    assert "2024-03-05, user: My locker at the pool is number 4512." in system
    assert "What was my locker number" not in system  # the message itself is not its own support

    early = chat.chat_with_memory_stream("Which locker did I use at the pool?", user_id=user, session_id=None,
                                         process=False)
    memory.sessions.add_messages([{"role": "user", "content": "My new locker at the pool is number 9000."}],
                                 user_id=user, session_id=early.session_id)  # sent before the reply was written
    list(early)
    supporting = [h.text for h in early.given if h.kind == "episode"]
    assert "My locker at the pool is number 4512." in supporting
    assert "My new locker at the pool is number 9000." not in supporting  # a later turn's message

    chat.given = GivenPolicy(messages=2, message_tokens=5)  # over budget: the message is left out
    turn = chat.chat_with_memory_stream("And the locker code again?", user_id=user, session_id=None, process=False)
    list(turn)
    assert [h for h in turn.given if h.kind == "episode"] == []


def test_a_long_message_is_saved_whole_and_says_what_extraction_reads(
        chat: ChatService, user: str, memory: TiMem) -> None:
    text = "I like long walks. " * 1200
    turn = chat.chat_with_memory_stream(text, user_id=user, session_id=None, process=False)
    list(turn)
    assert memory.sessions.messages(turn.session_id, user_id=user)[0].content == text.strip()
    assert any("reads its first 2,000" in n for n in turn.notes)


@pytest.mark.parametrize(("raw", "title"), [
    ("Marathon training in Porto", "Marathon training in Porto"),
    ('Title: "Bees on the balcony."\nSure, here is more text', "Bees on the balcony"),
    ("**A very long title that goes on and on forever**", "A very long title that goes"),
    ("", ""),
])
def test_clean_title(raw: str, title: str) -> None:
    from timemory.core._chat import clean_title

    assert clean_title(raw) == title


def test_replies_are_put_under_the_message_they_answer() -> None:
    from datetime import UTC, datetime

    from timemory import Message
    from timemory.core import in_reply_order

    def said(role: str, text: str) -> Message:
        return Message(id=text, user_id="u", session_id="s", role=role, content=text,
                       created_at=datetime(2024, 1, 1, tzinfo=UTC))

    order = [said("user", "q1"), said("user", "q2"), said("user", "q3"), said("assistant", "r1"),
             said("assistant", "r2"), said("user", "q4"), said("assistant", "r3"), said("assistant", "r4")]
    assert [m.id for m in in_reply_order(order)] == ["q1", "r1", "q2", "r2", "q3", "r3", "q4", "r4"]
    assert [m.id for m in in_reply_order(order[:2])] == ["q1", "q2"]  # nothing answered yet
    assert in_reply_order([said("assistant", "hello")])[0].id == "hello"  # a greeting before any question
