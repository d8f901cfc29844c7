"""Rolling session summaries: made every few turns and at a change of topic, kept with their history, searched as
episodes, given to the chat for the older turns of a long session, built by a replay with the session's date, and
once with the real local model."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from doubles import ScriptedLLMDouble

from timemory import ChatService, TiMem
from timemory.core import SummaryPolicy
from timemory.lab import load_dataset, replay


class SummarisingLLMDouble(ScriptedLLMDouble):
    """Replies as the scripted double; asked for a summary, it lists the user's lines of the prompt (so a test can
    count what each version covered)."""

    def stream(self, messages, *, usage=None):
        prompt = messages[-1]["content"]
        if not prompt.startswith("Summarise this conversation"):
            yield from super().stream(messages, usage=usage)
            return
        self.calls.append("summary")
        said = [line[len("user: "):] for line in prompt.splitlines() if line.startswith("user: ")]
        before = "continued. " if "Summary of the conversation before" in prompt else ""
        yield f"The user {before}said: " + " | ".join(said)


@pytest.fixture
def memory(sqlite_store, embedder) -> TiMem:
    return TiMem(sqlite_store, embedder, SummarisingLLMDouble(reply="Sure."))


def chat_through(chat: ChatService, user: str, texts: list[str], session_id: str | None = None) -> str:
    for text in texts:
        turn = chat.chat_with_memory_stream(text, user_id=user, session_id=session_id)
        list(turn)
        session_id = turn.session_id
    assert session_id is not None
    return session_id


def test_every_few_turns_a_new_version_keeps_the_history(memory: TiMem, user: str) -> None:
    chat = memory.chat
    chat.summaries.policy = SummaryPolicy(every_messages=2, topic_drift=2.0)  # no topic changes in this test
    session = chat_through(chat, user, ["I'm planning a trip to Japan.", "Should I buy a rail pass?"])
    first = memory.summaries.latest(user_id=user, session_id=session)
    assert first is not None and first.reason == "turns" and first.messages == 4
    assert first.content == "The user said: I'm planning a trip to Japan. | Should I buy a rail pass?"
    chat_through(chat, user, ["How many days in Kyoto?"], session)
    assert memory.summaries.latest(user_id=user, session_id=session) == first  # one turn: not due yet
    chat_through(chat, user, ["Is Nara worth a day trip?"], session)
    history = memory.summaries.history(user_id=user, session_id=session)
    assert [s.messages for s in history] == [4, 8]
    assert history[-1].content == "The user continued. said: How many days in Kyoto? | Is Nara worth a day trip?"

    found = memory.search("Japan trip plans", user_id=user, scope="episodes", limit=10)
    summaries = [h for h in found if h.episode is not None and h.episode.speaker == "summary"]
    assert [h.text for h in summaries] == [history[-1].content]  # the current version only


def test_a_change_of_topic_summarises_the_old_topic(memory: TiMem, user: str) -> None:
    chat = memory.chat
    chat.summaries.policy = SummaryPolicy(every_messages=10)
    session = chat_through(chat, user, ["I'm planning a trip to Japan in April.",
                                        "Should I get a rail pass for Tokyo and Kyoto?",
                                        "Is the day trip to Nara worth it?"])
    assert memory.summaries.latest(user_id=user, session_id=session) is None  # one topic, three turns
    chat_through(chat, user, ["My car makes a grinding noise when I brake."], session)
    summary = memory.summaries.latest(user_id=user, session_id=session)
    assert summary is not None and summary.reason == "topic"
    assert "grinding" not in summary.content and "Nara" in summary.content  # the old topic, not the new message


def test_a_long_session_gives_its_summary_to_the_reply(memory: TiMem, user: str) -> None:
    chat = memory.chat
    chat.history_messages = 2
    chat.summaries.policy = SummaryPolicy(every_messages=2, topic_drift=2.0)
    session = chat_through(chat, user, ["My locker code is 4512.", "I swim on Mondays."])
    chat_through(chat, user, ["What did I say about swimming?"], session)
    replies = [p for p in chat.llm.prompts if p[0]["content"].startswith("You are a helpful")]  # type: ignore[attr-defined]
    assert "Earlier in this conversation" not in replies[1][0]["content"]  # the history still held every turn
    last = replies[-1]
    assert "Earlier in this conversation" in last[0]["content"]
    assert "My locker code is 4512." in last[0]["content"]  # the summary: that turn left the history window
    assert [m["content"] for m in last[1:-1]] == ["I swim on Mondays.", "Sure."]


def test_a_replay_keeps_summaries_dated_with_the_session(sqlite_store, embedder, tmp_path: Path) -> None:
    data = {"sessions": [{"date": "2023-05-07", "messages": [
        {"id": f"m{i}", "role": "user" if i % 2 == 0 else "assistant", "content": text}
        for i, text in enumerate(["I adopted a dog called Rex.", "Lovely!", "He is a beagle.", "Cute!"])]}]}
    path = tmp_path / "rex.json"
    path.write_text(json.dumps(data))
    tm = TiMem(sqlite_store, embedder, SummarisingLLMDouble())
    dataset = load_dataset(path, "timemory")
    replay(tm, dataset, user_prefix="r-", summaries=True)
    user = dataset.user_id("r-", dataset.conversations[0])
    session = tm.sessions.list(user_id=user)[0]
    summary = tm.summaries.latest(user_id=user, session_id=session.id)
    assert summary is not None and summary.created_at.date() == datetime(2023, 5, 7, tzinfo=UTC).date()
    assert summary.content == "The user said: I adopted a dog called Rex. | He is a beagle."
    replay(tm, dataset, user_prefix="r-", summaries=True)  # resumed: nothing new, no new version
    assert len(tm.summaries.history(user_id=user, session_id=session.id)) == 1


@pytest.mark.local_llm
def test_the_local_model_writes_a_summary(sqlite_store, embedder, user: str) -> None:
    from timemory import Settings
    from timemory.wiring import build_llm

    llm = build_llm(Settings(_env_file=None, openai_api_key=None, openai_base_url=None))  # type: ignore[call-arg]
    tm = TiMem(sqlite_store, embedder, llm)
    session = tm.sessions.create(user_id=user)
    tm.sessions.add_messages([
        {"role": "user", "content": "I just moved to Porto and started a job as a nurse at the city hospital."},
        {"role": "assistant", "content": "Congratulations! How do you like Porto so far?"},
        {"role": "user", "content": "I love it, but the night shifts are hard."}], user_id=user, session_id=session.id)
    summary = tm.summaries.update(user_id=user, session_id=session.id, reason="asked")
    assert summary is not None and len(summary.content.split()) >= 3
    assert tm.search(summary.content, user_id=user, scope="episodes")[0].episode.speaker == "summary"  # type: ignore[union-attr]


def test_topic_changes_are_found_on_the_labelled_set(memory: TiMem, user: str) -> None:
    """The hand-labelled sessions of bench/data/topics.json told one user message at a time: the chat's own check
    finds about the changes the benchmark reports for the default threshold (10 of 13, 1 false alarm)."""
    chat = memory.chat
    chat.summaries.policy = SummaryPolicy(every_messages=1_000)  # only changes of topic make summaries here
    conversations = json.loads((Path(__file__).parents[1] / "bench" / "data" / "topics.json").read_text())
    found = false = missed = 0
    for conversation in conversations["conversations"]:
        session = memory.sessions.create(user_id=user)
        previous = None
        for topic, text in conversation["messages"]:
            memory.sessions.add_messages([{"role": "user", "content": text}], user_id=user, session_id=session.id)
            due = chat.summaries.due(user_id=user, session_id=session.id)
            called = due is not None and due[0] == "topic"
            if called:
                chat.summaries.update(user_id=user, session_id=session.id, reason="topic", through_seq=due[1])
            changed = previous is not None and topic != previous
            found, false, missed = found + (called and changed), false + (called and not changed), \
                missed + (changed and not called)
            previous = topic
    assert found + missed == 13
    assert found >= 9 and false <= 2  # 10 and 1 here; a CPU whose kernels round otherwise may move one near the line
