"""AppTest of the session writes the other app tests do not click: a chat renamed and deleted, a session deleted on
the Sessions & users page, and the demo replayed with the configured model — each shown at once, without a page
clearing a cache (the adapter's writes do)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from doubles import ScriptedLLMDouble
from streamlit.testing.v1 import AppTest

from dashboard import adapter, state
from timemory import TiMem
from timemory.lab import seed_demo

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tm(sqlite_store, embedder):
    memory = TiMem(sqlite_store, embedder, ScriptedLLMDouble(reply="Noted."))
    seed_demo(memory)
    adapter.override(memory=memory)
    yield memory
    for job in adapter.replays():  # a replay started here ends before the database is closed
        job.stop()
        deadline = time.monotonic() + 60
        while job.running and time.monotonic() < deadline:
            time.sleep(0.1)
    adapter.override()


def app(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.session_state[state.USER] = "maya"
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def session_titles(at: AppTest) -> list[str]:
    picker = at.selectbox(key="chat_session_picker")
    return [o for o in picker.options if o != "➕ New chat"]


def test_a_chat_renamed_then_deleted_shows_at_once(tm: TiMem) -> None:
    chat = tm.sessions.list(user_id="maya")[0]
    at = app("pages/chat.py")
    at.selectbox(key="chat_session_picker").set_value(chat.id).run()
    next(t for t in at.text_input if t.label == "Title").set_value("Renamed by hand").run()
    next(b for b in at.button if b.label == "Save title").click().run()
    assert not at.exception, at.exception
    assert tm.sessions.get(chat.id, user_id="maya").title == "Renamed by hand"
    assert any(o.startswith("Renamed by hand · ") for o in session_titles(at))
    count = len(session_titles(at))
    at.button(key="delete_session").click().run()
    at.button(key="confirm-chat").click().run()
    assert not at.exception, at.exception
    assert chat.id not in {s.id for s in tm.sessions.list(user_id="maya")}
    assert len(session_titles(at)) == count - 1 and at.session_state[state.CHAT_SESSION] is None


def test_a_session_deleted_on_the_admin_page_leaves_its_list_and_its_count(tm: TiMem) -> None:
    at = app("pages/admin.py")
    before = at.dataframe[0].value.set_index("id").loc["maya", "sessions"]
    doomed = at.selectbox(key="admin_session").value
    at.button(key="delete_session_btn").click().run()
    assert doomed in {s.id for s in tm.sessions.list(user_id="maya")}  # asked first
    at.button(key="confirm-session").click().run()
    assert not at.exception, at.exception
    assert doomed not in {s.id for s in tm.sessions.list(user_id="maya")}
    assert at.dataframe[0].value.set_index("id").loc["maya", "sessions"] == before - 1
    assert doomed not in at.dataframe[1].value["id"].tolist()


def test_the_demo_replays_with_the_configured_model_in_the_background(tm: TiMem) -> None:
    at = app("pages/admin.py")
    at.button(key="demo_live").click().run()
    assert not at.exception, at.exception
    assert any("Replaying in the background" in s.value for s in at.success)
    job = adapter.replay_jobs().get("demo-live")
    assert job is not None and job.user_prefix == "live-" and job.granularity == "session"
    assert tm.get_experiment("demo-live") is not None


def test_a_user_erased_in_one_tab_cannot_come_back_through_another(tm: TiMem) -> None:
    stale = app("pages/chat.py")  # a second tab, open on maya
    eraser = app("pages/admin.py")
    eraser.button(key="delete_user_btn").click().run()
    eraser.button(key="confirm-user").click().run()
    assert not eraser.exception, eraser.exception
    assert any(s.value.startswith("Erased user 'maya': ") and "memories" in s.value for s in eraser.success)
    stale.chat_input[0].set_value("Am I still here?").run()
    assert not stale.exception, stale.exception
    assert "maya" not in {u.id for u in tm.users.list()} and tm.users.erased(user_id="maya")
    assert stale.session_state[state.USER] != "maya"
    assert any("'maya' was erased" in s.value for s in stale.success)
    # the message was not sent for the user the tab now shows either
    shown = stale.session_state[state.USER]
    assert all(m.content != "Am I still here?" for s in tm.sessions.list(user_id=shown)
               for m in tm.sessions.messages(s.id, user_id=shown))


def test_a_first_open_lands_on_the_user_with_the_most_to_show(tm: TiMem) -> None:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    users = tm.users.list()
    richest = max(users, key=lambda u: (u.memories_outdated, u.memories_active))
    assert at.session_state[state.USER] == richest.id and richest.id != sorted(u.id for u in users)[0]
