"""The chat: messages sent back to back are both answered, in order, and learnt in one session; a reply shows the
earlier message it was given."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest
from helpers import (
    query,
    settled,
    user_shown,
)

from timemory import TiMem
from timemory.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.local_llm]


def test_back_to_back_messages_are_both_answered_and_learnt_in_one_session(page, server: str, data: Path) -> None:
    page.goto(f"{server}/?user=maya")
    page.get_by_placeholder("Tell me something about yourself…").wait_for()
    sessions_before = query(data, "SELECT count(*) FROM sessions WHERE user_id = 'maya'")[0][0]
    box = page.get_by_placeholder("Tell me something about yourself…")
    box.fill("I just adopted a dog named Pico.")
    box.press("Enter")
    page.wait_for_timeout(300)  # the first reply is streaming when the second message is sent
    box = page.get_by_placeholder("Tell me something about yourself…")
    box.fill("I also started learning to play the violin.")
    box.press("Enter")

    deadline = time.monotonic() + 300
    while True:
        rows = query(data, "SELECT session_id, role FROM messages WHERE user_id = 'maya' AND session_id IN "
                           "(SELECT id FROM sessions WHERE user_id = 'maya' AND created_at = "
                           "(SELECT max(created_at) FROM sessions WHERE user_id = 'maya'))")
        runs = query(data, "SELECT count(*) FROM pipeline_runs WHERE user_id = 'maya' AND session_id = ?",
                     rows[0][0] if rows else "")[0][0]
        if [r for _, r in rows].count("assistant") == 2 and runs == 2:
            break
        assert time.monotonic() < deadline, f"messages {rows}, runs {runs}"
        page.wait_for_timeout(1000)
    assert [r for _, r in rows].count("user") == 2, rows  # both messages, in one session
    assert query(data, "SELECT count(*) FROM sessions WHERE user_id = 'maya'")[0][0] == sessions_before + 1
    session = rows[0][0]
    page.get_by_text("I also started learning to play the violin.").filter(visible=True).first.wait_for()
    deadline = time.monotonic() + 60
    while page.get_by_text("What the memory pipeline did").count() < 2:  # every reply opens its own trace
        assert time.monotonic() < deadline, "a reply has no trace"
        page.wait_for_timeout(500)
    assert f"session={session}" in page.url
    log = (data / "llm-server.log").read_text(errors="replace")
    assert "restarting" not in log

    # a reload keeps the user and the chat; each reply sits under the message it answers, although the second
    # message was stored before the first reply
    page.reload()
    page.get_by_text("I just adopted a dog named Pico.").filter(visible=True).first.wait_for()
    assert "user=maya" in page.url
    settled(page)
    shown = page.locator("[data-testid='stChatMessage']").all()
    roles = ["assistant" if m.locator("[data-testid='stChatMessageAvatarAssistant']").count() else "user"
             for m in shown]
    texts = [m.inner_text() for m in shown]
    dog = next(i for i, t in enumerate(texts) if "adopted a dog named Pico" in t and roles[i] == "user")
    violin = next(i for i, t in enumerate(texts) if "learning to play the violin" in t and roles[i] == "user")
    assert roles[dog:violin + 2] == ["user", "assistant", "user", "assistant"], list(zip(roles, texts, strict=True))

    # "Open" on a change of the trace lands on that memory, for the same user
    openers = page.locator("[data-testid='stButton'] button:visible", has_text="Open")
    if openers.count():
        openers.first.click()
        page.get_by_text("🗂️ Memories").wait_for()
        settled(page)
        assert "user=maya" in page.url and "memory=" in page.url
        assert page.get_by_text("No memory").count() == 0
        user_shown(page, "maya")


def test_a_reply_shows_the_earlier_message_it_was_given(page, server: str, data: Path, embedder,
                                                         tmp_path: Path) -> None:
    """Nothing was learnt of the locker; the message that said it, in another chat, is given to the reply and shown
    under it with who said it and when."""
    said = "My locker at the swimming pool is number 4512."
    store = Store.from_url(f"sqlite:///{data}/timemory.db", embedding_model=embedder.name, embedding_dim=embedder.dim)
    tm = TiMem(store, embedder)
    pool = tm.sessions.create(user_id="maya", title="Swimming")
    tm.sessions.add_messages([{"role": "user", "content": said}], user_id="maya", session_id=pool.id)
    tm.close()

    page.goto(f"{server}/?user=maya")  # a new chat
    box = page.get_by_placeholder("Tell me something about yourself…")
    box.fill("What was my locker number at the swimming pool?")
    box.press("Enter")
    given = page.get_by_text("Memories given to this reply").last
    given.wait_for(timeout=300_000)
    given.click()
    line = page.get_by_text(f"💬 user said on {date.today():%Y-%m-%d}: {said}")
    line.wait_for()
    page.screenshot(path=str(tmp_path / "chat-supporting-turn.png"), full_page=True)
