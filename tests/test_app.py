"""Streamlit AppTest for every page, with backends passed in through the adapter (LLM double)."""

from __future__ import annotations

import json
from datetime import UTC
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
    llm = ScriptedLLMDouble(facts=[{"content": "The user keeps bees on the balcony.", "type": "activity"}],
                            reply="Bees on a balcony, how lovely!")
    memory = TiMem(sqlite_store, embedder, llm)
    seed_demo(memory)
    adapter.override(memory=memory)
    yield memory
    adapter.override()


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.session_state[state.USER] = "maya"
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
    assert at.session_state[state.USER] == "zoe"
    assert "zoe" in {u.id for u in tm.users.list()}


def table(at: AppTest):
    """The memory browser's editable table, as a DataFrame."""
    return at.dataframe[0].value


def test_sidebar_shows_user_counts_and_backends(tm: TiMem) -> None:
    at = app()
    assert at.sidebar.selectbox[0].value == "maya"
    assert [m.value for m in at.sidebar.metric] == ["7", "3"]
    assert any("scripted-double" in c.value for c in at.sidebar.caption)
    assert any("Demo" in c.value and "scripted" in c.value for c in at.sidebar.caption)


def test_the_demo_shows_the_pipeline_at_work_on_first_open_with_no_model_call(tm: TiMem) -> None:
    """Runs, traces, diffs and outdating are there, dated like the demo's sessions, and the configured model (here a
    double that counts its calls) was never asked."""
    assert tm.llm.calls == []
    runs = tm.list_runs(user_id="maya", limit=50)
    assert len(runs) == 3 and {r.llm_model for r in runs} == {"scripted demo answers"}
    assert len({r.created_at.date() for r in runs}) == 3  # each session's own date, not the day it was seeded
    outdated = [m for m in tm.list_memories(user_id="maya", limit=50) if m.status == "outdated"]
    lisbon = next(m for m in tm.list_memories(user_id="maya", limit=50) if m.content == "The user lives in Lisbon.")
    amsterdam = next(m for m in outdated if m.content == "The user lives in Amsterdam.")
    assert amsterdam.superseded_by == lisbon.id and amsterdam.outdated_at == lisbon.created_at
    assert lisbon.created_at.date() == max(r.created_at for r in runs).date() != amsterdam.created_at.date()
    at = app("pages/timeline.py")
    assert not any("0 runs" in m.value for m in [*at.markdown, *at.caption])
    assert any("outdated" in m.value or "replaced" in m.value for m in at.markdown)  # a run's diff
    moved = next(x for x in tm.sessions.list(user_id="maya") if x.title.startswith("Knee pain and the move"))
    chat = app("pages/chat.py")
    chat.selectbox(key="chat_session_picker").set_value(moved.id).run()
    assert not chat.exception, chat.exception
    traces = [e for e in chat.expander if "What the memory pipeline did" in e.label]
    assert traces and "8 changes" in traces[-1].label  # the demo's chats carry their run's trace
    assert any("scripted" in c.value for c in chat.caption)  # and say its answers were scripted


def test_filters_change_the_rows(tm: TiMem) -> None:
    at = app("pages/memories.py")
    assert len(table(at)) == 10
    at.multiselect(key=state.Q_STATUSES).set_value(["outdated"]).run()
    outdated = table(at)
    assert set(outdated["status"]) == {"outdated"} and len(outdated) == 3
    at.multiselect(key=state.Q_TYPES).set_value(["preference"]).run()
    assert list(table(at)["content"]) == ["The user is vegetarian."]
    at.text_input(key=state.Q_TEXT).set_value("amsterdam").run()
    assert list(table(at)["content"]) == []


def settle(at: AppTest) -> AppTest:
    """Wait for the chat's background turns of this browser session, then draw the page again."""
    for turn in at.session_state["chat_turns"]:
        assert turn.wait(timeout=60), turn.state
    return at.run()


def test_chat_turn_streams_reply_and_shows_trace(tm: TiMem) -> None:
    at = app("pages/chat.py")
    at.chat_input[0].set_value("I started keeping bees on my balcony").run()
    assert not at.exception, at.exception
    settle(at)
    texts = " ".join(m.value for m in at.markdown)
    assert "Bees on a balcony, how lovely!" in texts
    assert "The user keeps bees on the balcony." in str([d.value for d in at.dataframe])
    assert any(m.label == "LLM calls" for m in at.metric)
    assert tm.search("bees", user_id="maya", limit=1)[0].memory.content == "The user keeps bees on the balcony."
    session = at.session_state[state.CHAT_SESSION]
    assert at.query_params[state.Q_SESSION] == session and at.query_params[state.Q_USER] == "maya"


def test_two_messages_in_a_row_stay_in_one_session_and_each_reply_has_its_trace(tm: TiMem) -> None:
    at = app("pages/chat.py")
    at.chat_input[0].set_value("I started keeping bees on my balcony").run()
    at.chat_input[0].set_value("Also, I moved to Utrecht").run()
    settle(at)
    assert not at.exception, at.exception
    session = at.session_state[state.CHAT_SESSION]
    messages = tm.sessions.messages(session, user_id="maya")
    assert [m.role for m in messages].count("user") == 2 and [m.role for m in messages].count("assistant") == 2
    assert sum(s.title == "New chat" or s.message_count == 1 for s in tm.sessions.list(user_id="maya")) == 0
    runs = tm.list_runs(user_id="maya", session_id=session)
    assert len(runs) == 2  # both exchanges were learnt from
    # every reply, not only the last, opens the trace of the run it caused
    expanders = [e.label for e in at.expander if "What the memory pipeline did" in e.label]
    assert len(expanders) == 2


def test_reopening_a_session_shows_the_trace_of_every_reply(tm: TiMem) -> None:
    at = app("pages/chat.py")
    at.chat_input[0].set_value("I started keeping bees on my balcony").run()
    settle(at)
    session = at.session_state[state.CHAT_SESSION]
    again = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    again.query_params[state.Q_USER] = "maya"
    again.query_params[state.Q_SESSION] = session
    again.run()
    again.switch_page("pages/chat.py").run()
    assert not again.exception, again.exception
    assert again.session_state[state.USER] == "maya"
    assert any("What the memory pipeline did" in e.label for e in again.expander)


def test_map_renders_a_plotly_chart(tm: TiMem) -> None:
    at = app("pages/embedding_map.py")
    charts = at.get("plotly_chart")
    assert charts, "expected a plotly chart"
    assert "10 memories" in " ".join(c.value for c in at.caption)
    spec = json.loads(charts[0].proto.spec)
    legend = [t for t in spec["data"] if t.get("showlegend", True) and t.get("legendgroup")]
    assert sorted(t["name"] for t in legend) == sorted({m.type for m in tm.list_memories(user_id="maya")})
    assert {t["marker"]["symbol"] for t in legend} == {"circle"}  # ✕ means outdated, never a type
    assert spec["layout"]["clickmode"] == "event+select"  # a click selects the point
    at.toggle(key="map_as_of_on").set_value(True).run()
    latest = max(e.created_at for e in tm.events(user_id="maya"))  # the latest change, an outdating may be later
    assert at.slider(key="map_as_of").value.replace(tzinfo=UTC) == latest


def test_admin_delete_asks_for_confirmation(tm: TiMem) -> None:
    at = app("pages/admin.py")
    at.button(key="delete_user_btn").click().run()
    assert not at.exception
    assert tm.count_memories(user_id="maya") == 10  # nothing deleted by the first click
    assert any("cannot be undone" in w.value for w in at.warning)
    at.button(key="confirm-user").click().run()
    assert tm.count_memories(user_id="maya") == 0


def edit_cell(at: AppTest, row: int, column: str, value: object) -> AppTest:
    """Type into the memory grid, as the browser sends it: edits by row position, under the grid's own key."""
    at.session_state[at.dataframe[0].key] = {"edited_rows": {row: {column: value}}, "added_rows": [],
                                             "deleted_rows": []}
    return at.run()


def save_button(at: AppTest):
    return next(b for b in at.button if b.key == "save_edits")


def contents(tm: TiMem) -> dict[str, str]:
    return {m.id: m.content for m in tm.list_memories(user_id="maya")}


def test_inline_edit_persists_reembeds_and_writes_event(tm: TiMem) -> None:
    at = app("pages/memories.py")
    first = table(at).iloc[0]
    edit_cell(at, 0, "content", "The user keeps three beehives.")
    assert save_button(at).label == "💾 Save 1 edit"
    save_button(at).click().run()
    assert not at.exception, at.exception
    assert tm.get_memory(first["id"], user_id="maya").content == "The user keeps three beehives."
    assert tm.history(first["id"], user_id="maya")[-1].event == "EDIT"
    found = tm.search("beehives", user_id="maya", limit=1, statuses=["active", "outdated"])  # row 0 may be outdated
    assert found[0].memory.id == first["id"]
    assert any("re-embedded" in s.value for s in at.success)


def test_an_edit_under_a_filter_lands_on_that_memory_only_and_is_not_offered_again(tm: TiMem) -> None:
    at = app("pages/memories.py")
    at.multiselect(key=state.Q_STATUSES).set_value(["outdated"]).run()
    rows = table(at)
    target = rows.iloc[1]  # not the first row: saving re-sorts the grid by update time
    before = contents(tm)
    edit_cell(at, 1, "content", "The user lived in Amsterdam until last year.")
    save_button(at).click().run()
    assert not at.exception, at.exception
    after = contents(tm)
    assert {k for k in after if after[k] != before[k]} == {target["id"]}
    assert after[target["id"]] == "The user lived in Amsterdam until last year."
    assert save_button(at).disabled and save_button(at).label == "💾 Save 0 edits"
    assert table(at).iloc[0]["id"] == target["id"]  # it moved to the top; nothing is pending anywhere
    at.run()
    assert contents(tm) == after and save_button(at).disabled


def test_a_cleared_cell_is_refused_with_the_reason_and_nothing_is_saved(tm: TiMem) -> None:
    at = app("pages/memories.py")
    before = contents(tm)
    at.session_state[at.dataframe[0].key] = {"edited_rows": {0: {"content": None}, 1: {"type": "health"}},
                                             "added_rows": [], "deleted_rows": []}
    at.run()
    save_button(at).click().run()
    assert any("cannot be blank" in e.value for e in at.error)
    assert not at.success
    assert save_button(at).disabled and save_button(at).label == "💾 Save 0 edits"  # the cells are put back
    assert table(at)["content"].notna().all() and set(table(at)["content"]) <= set(before.values())
    assert contents(tm) == before
    assert {m.type for m in tm.list_memories(user_id="maya")} == {m.type for m in tm.list_memories(user_id="maya")}
    assert all(e.event != "EDIT" for m in tm.list_memories(user_id="maya") for e in tm.history(m.id, user_id="maya"))


def test_reactivating_a_replaced_memory_says_its_replacement_stays_active(tm: TiMem) -> None:
    at = app("pages/memories.py")
    at.multiselect(key=state.Q_STATUSES).set_value(["outdated"]).run()
    old = next(m for m in tm.list_memories(user_id="maya", statuses=["outdated"]) if m.superseded_by)
    replacement = tm.get_memory(old.superseded_by or "", user_id="maya")
    row = list(table(at)["id"]).index(old.id)
    edit_cell(at, row, "select", True)
    next(b for b in at.button if b.label == "Reactivate selected").click().run()
    warning = " ".join(w.value for w in at.warning)
    assert replacement.content in warning and "still active" in warning


def test_superseded_by_shows_the_replacement_text_not_an_id(tm: TiMem) -> None:
    at = app("pages/memories.py")
    at.multiselect(key=state.Q_STATUSES).set_value(["outdated"]).run()
    shown = set(table(at)["superseded by"])
    expected = {f"{tm.get_memory(m.superseded_by, user_id='maya').content} (active)"
                for m in tm.list_memories(user_id="maya", statuses=["outdated"]) if m.superseded_by}
    assert expected and expected <= shown


def test_filters_and_user_come_from_the_url(tm: TiMem) -> None:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.query_params[state.Q_USER] = "aisha"
    at.run()
    at.switch_page("pages/memories.py")
    at.query_params[state.Q_STATUSES] = "outdated"
    at.run()
    assert not at.exception, at.exception
    assert at.session_state[state.USER] == "aisha"
    assert set(table(at)["status"]) == {"outdated"}
    assert len(table(at)) == tm.count_memories(user_id="aisha", statuses=["outdated"])


def test_open_from_a_chat_trace_keeps_the_user_and_shows_that_memory(tm: TiMem) -> None:
    at = app("pages/chat.py")
    at.sidebar.selectbox(key=state.USER_PICKER).set_value("aisha").run()
    at.chat_input[0].set_value("I started keeping bees on my balcony").run()
    settle(at)
    opener = next(b for b in at.button if (b.key or "").startswith("open-"))
    memory_id = (opener.key or "").rsplit("-", 1)[0][-36:]  # open-<message id>-<memory id>-<event>
    opener.click().run()
    assert not at.exception, at.exception
    assert at.session_state[state.USER] == "aisha"
    assert at.sidebar.selectbox(key=state.USER_PICKER).value == "aisha"
    assert at.selectbox(key="history_pick").value == memory_id
    assert not at.warning


def test_adding_by_hand_keeps_the_text_until_the_memory_is_stored(tm: TiMem, monkeypatch) -> None:
    from timemory import DatabaseError

    at = app("pages/memories.py")
    add = next(b for b in at.button if b.label == "Add")
    at.text_area(key="add_content").set_value("The user keeps a sourdough starter.")
    add.click().run()
    assert not at.exception, at.exception
    assert "The user keeps a sourdough starter." in {m.content for m in tm.list_memories(user_id="maya")}
    assert at.text_area(key="add_content").value == ""  # cleared once stored

    def database_down(*_args: object, **_kwargs: object) -> None:
        raise DatabaseError("Database write failed: connection lost")

    monkeypatch.setattr(tm, "add", database_down)
    at.text_area(key="add_content").set_value("The user plays the oboe.")
    next(b for b in at.button if b.label == "Add").click().run()
    assert any("connection lost" in e.value for e in at.error)
    assert at.text_area(key="add_content").value == "The user plays the oboe."  # nothing the person typed is lost
    assert "The user plays the oboe." not in {m.content for m in tm.list_memories(user_id="maya")}


def test_search_in_the_browser_says_why_each_memory_ranked(tm: TiMem) -> None:
    at = app("pages/memories.py")
    at.text_input(key=state.MEMORY_QUERY).set_value("Where does the user live?").run()
    assert not at.exception, at.exception
    found = at.dataframe[0].value
    assert list(found.columns[:4]) == ["score", "status", "type", "content"] and "why" in found.columns
    assert all("× meaning" in why for why in found["why"])
    assert found["content"][0] == "The user lives in Lisbon." and set(found["status"]) == {"active"}  # true now
    # the words column and the "why" give the same number: BM25 ÷ the best BM25
    for norm, bm25, why in zip(found["words ÷ best"], found["words (BM25)"], found["why"], strict=True):
        assert f"words {norm:.2f} (BM25 {bm25:.2f}" in why
    at.multiselect(key=state.Q_STATUSES).set_value(["active", "outdated"]).run()
    assert "outdated" in set(at.dataframe[0].value["status"])  # asked for: Amsterdam is found too
    at.multiselect(key=state.Q_STATUSES).set_value([]).run()
    at.radio(key="f_search_mode").set_value("keyword").run()
    words = at.dataframe[0].value
    assert len(words) and all(matched for matched in words["matched"])  # words only: every hit shares a word
    assert "meaning" not in words.columns  # no column of Nones
    at.radio(key="f_search_mode").set_value("hybrid").run()
    at.radio(key="f_search_scope").set_value("all").run()
    both = at.dataframe[0].value
    assert {"memory", "said"} <= set(both["kind"])  # the demo's messages are searched too
    said = both[both["kind"] == "said"]
    assert all(who.split(",")[0] in ("user", "assistant", "summary") for who in said["said"])
    assert list(both["score"]) == sorted(both["score"], reverse=True)


def test_two_messages_sent_back_to_back_each_show_their_reply_under_them(tm: TiMem) -> None:
    """Stored order is question 1, question 2, reply 1, reply 2 (the second was sent before the first was
    answered); the chat shows each reply under its question."""
    session = tm.sessions.create(user_id="maya", title="Back to back")
    tm.sessions.add_messages([{"role": "user", "content": "First question?"},
                              {"role": "user", "content": "Second question?"},
                              {"role": "assistant", "content": "Answer to the first."},
                              {"role": "assistant", "content": "Answer to the second."}],
                             user_id="maya", session_id=session.id)
    at = app("pages/chat.py")
    at.selectbox(key="chat_session_picker").set_value(session.id).run()
    assert not at.exception, at.exception
    shown = [m.markdown[0].value for m in at.chat_message]
    assert shown == ["First question?", "Answer to the first.", "Second question?", "Answer to the second."]
