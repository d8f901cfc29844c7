"""Streamlit AppTest for every page, with backends passed in through the adapter (LLM double)."""

from __future__ import annotations

from pathlib import Path

import pytest
from doubles import ScriptedLLMDouble
from streamlit.testing.v1 import AppTest

from dashboard import adapter
from timemory import TiMem
from timemory.demo import seed_demo

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tm(sqlite_store, embedder):  # type: ignore[no-untyped-def]
    llm = ScriptedLLMDouble(facts=[{"content": "The user keeps bees on the balcony.", "type": "activity"}],
                            reply="Bees on a balcony, how lovely!")
    memory = TiMem(sqlite_store, embedder, llm)
    seed_demo(memory)
    adapter.override(memory=memory)
    yield memory
    adapter.override()


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.session_state["user_id"] = "maya"
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, at.exception
    return at


def test_new_user_is_created_and_selected(tm: TiMem) -> None:
    at = app()
    at.text_input(key="new_user_id").set_value("zoe")
    at.button(key="create_user").click().run()
    assert not at.exception, at.exception
    assert at.session_state["user_id"] == "zoe"
    assert "zoe" in {u.id for u in tm.store.list_users()}


def table(at: AppTest):  # type: ignore[no-untyped-def]
    """The memory browser's editable table, as a DataFrame."""
    return at.dataframe[0].value


def test_sidebar_shows_user_counts_and_backends(tm: TiMem) -> None:
    at = app()
    assert at.sidebar.selectbox[0].value == "maya"
    assert [m.value for m in at.sidebar.metric] == ["7", "3"]
    assert any("scripted-double" in c.value for c in at.sidebar.caption)


def test_filters_change_the_rows(tm: TiMem) -> None:
    at = app("pages/memories.py")
    assert len(table(at)) == 10
    at.multiselect(key="f_statuses").set_value(["outdated"]).run()
    outdated = table(at)
    assert set(outdated["status"]) == {"outdated"} and len(outdated) == 3
    at.multiselect(key="f_types").set_value(["preference"]).run()
    assert list(table(at)["content"]) == ["The user is vegetarian."]
    at.text_input(key="f_text").set_value("amsterdam").run()
    assert list(table(at)["content"]) == []


def test_chat_turn_streams_reply_and_shows_trace(tm: TiMem) -> None:
    at = app("pages/chat.py")
    at.chat_input[0].set_value("I started keeping bees on my balcony").run()
    assert not at.exception, at.exception
    texts = " ".join(m.value for m in at.markdown)
    assert "Bees on a balcony, how lovely!" in texts
    assert "The user keeps bees on the balcony." in str([d.value for d in at.dataframe])
    assert any(m.label == "LLM calls" for m in at.metric)
    assert tm.search("bees", "maya", limit=1)[0].memory.content == "The user keeps bees on the balcony."


def test_map_renders_a_plotly_chart(tm: TiMem) -> None:
    at = app("pages/embedding_map.py")
    charts = at.get("plotly_chart")
    assert charts, "expected a plotly chart"
    assert "10 memories" in " ".join(c.value for c in at.caption)


def test_admin_delete_asks_for_confirmation(tm: TiMem) -> None:
    at = app("pages/admin.py")
    at.button(key="delete_user_btn").click().run()
    assert not at.exception
    assert tm.count_memories("maya") == 10  # nothing deleted by the first click
    assert any("cannot be undone" in w.value for w in at.warning)
    at.button(key="confirm-user").click().run()
    assert tm.count_memories("maya") == 0


def test_inline_edit_persists_reembeds_and_writes_event(tm: TiMem) -> None:
    at = app("pages/memories.py")
    first = table(at).iloc[0]
    at.session_state["editor"] = {"edited_rows": {0: {"content": "The user keeps three beehives."}},
                                  "added_rows": [], "deleted_rows": []}
    at.run()
    save = next(b for b in at.button if b.label.startswith("💾 Save 1 edit"))
    save.click().run()
    assert not at.exception, at.exception
    assert tm.get_memory(first["id"], "maya").content == "The user keeps three beehives."
    assert tm.history(first["id"], "maya")[-1].event == "EDIT"
    assert tm.search("beehives", "maya", limit=1)[0].memory.id == first["id"]
    assert any("re-embedded" in s.value for s in at.success)
