"""Chat that uses and grows memory, and shows what the pipeline did for every reply.

A message is handed to the chat service in the chat input's callback, before the script runs: it is saved at once
and answered in the background, so sending a second message while the first is still being answered (which stops
this script run) loses nothing; both are answered in order, in the same session, and both are learnt from.
"""

import streamlit as st

from dashboard import adapter, moments, router, state, ui, views
from dashboard import runs as dashboard_runs
from dashboard.adapter import ChatExchange
from timemory import TiMemoryError

router.ensure_router()
user = ui.current_user()

st.header("💬 Chat")
sessions = ui.guarded(lambda: adapter.sessions(user)) or []
titles = {s.id: moments.session_label(s.title, s.updated_at) for s in sessions}
if state.CHAT_SESSION not in st.session_state:  # first visit in this browser session: a link may name the chat
    st.session_state[state.CHAT_SESSION] = ui.from_url(state.Q_SESSION)
if st.session_state[state.CHAT_SESSION] not in titles:  # deleted, another user's, or a stale link
    st.session_state[state.CHAT_SESSION] = None
session_id: str | None = st.session_state[state.CHAT_SESSION]
ui.set_url(**{state.Q_SESSION: session_id})


def pick_session() -> None:
    st.session_state[state.CHAT_SESSION] = st.session_state["chat_session_picker"]


def send() -> None:
    """Runs before the next script run: save the message and queue its reply (nothing here can be interrupted)."""
    text = st.session_state.get("chat_prompt") or ""
    try:
        turn = adapter.submit_message(text, user_id=user, session_id=st.session_state.get(state.CHAT_SESSION))
    except TiMemoryError as exc:
        st.session_state["chat_error"] = f"Your message was not sent: {exc} (code: {exc.code})"
        return
    st.session_state[state.CHAT_SESSION] = turn.session_id
    st.session_state.setdefault("chat_turns", []).append(turn)


left, mid, right = st.columns([4, 1, 1], vertical_alignment="bottom")
st.session_state["chat_session_picker"] = session_id
left.selectbox("Session", [None, *titles], key="chat_session_picker", on_change=pick_session,
               format_func=lambda i: "➕ New chat" if i is None else titles.get(i, "New chat"))

if session_id:
    sid: str = session_id
    with mid.popover("Rename"):
        title = st.text_input("Title", value=next((s.title for s in sessions if s.id == session_id), ""),
                              max_chars=200)
        saved = st.button("Save title") and ui.guarded(
            lambda: adapter.rename_session(sid, user_id=user, title=title), "Renamed") is not None
        if saved:
            st.rerun()

    def delete_chat(p: dict) -> None:
        adapter.delete_session(p["session"], user_id=user)
        st.session_state[state.CHAT_SESSION] = None

    if right.button("Delete", key="delete_session"):
        ui.ask("chat", session=session_id)
    ui.confirmation("chat", "Delete this chat?", "The chat and its messages are deleted. Memories learnt from it stay.",
                    delete_chat)

st.chat_input("Tell me something about yourself…", key="chat_prompt", on_submit=send,
              max_chars=adapter.max_content_chars())
if error := st.session_state.pop("chat_error", None):
    st.error(error)


def show_turn_extras(turn: ChatExchange) -> None:
    """What this process knows about a reply beyond the stored trace: memories it was given, notes, failures."""
    used = turn.given
    with st.expander(f"🧠 Memories given to this reply ({len(used)}, about {turn.given_tokens} tokens of its "
                     "prompt)"):
        if not used:
            st.caption("None were relevant enough to include.")
        for hit in used:
            why = hit.scores.explain() if hit.scores else f"score {hit.score:.2f}"
            if hit.episode is not None:  # an earlier message given in support
                said = hit.episode
                st.text(f"💬 {said.speaker} said on {said.created_at:%Y-%m-%d}: {said.content}  · {why}")
            else:
                st.text(f"{hit.text}  · {why}")
    for note in turn.notes:
        st.caption(note)


my_turns: list[ChatExchange] = st.session_state.get("chat_turns", [])
if session_id:
    open_session: str = session_id
    # each reply under the message it answers, also when two were sent before the first was answered
    messages = ui.guarded(lambda: adapter.messages(open_session, user_id=user)) or []
    by_message = adapter.runs_by_message(open_session, user_id=user)
    runs = dashboard_runs.shown_under(messages, by_message)
    versions = ui.guarded(lambda: adapter.summary_history(user, open_session)) or []
    if versions:
        latest = versions[-1]
        with st.expander(f"📝 Summary of this chat ({latest.messages} of {len(messages)} messages, "
                         f"{latest.created_at:%Y-%m-%d %H:%M})"):
            st.markdown(latest.content)
            st.caption("Kept up to date every few turns, at a change of topic and when the chat goes idle; found "
                       "by search with what was said, and given to replies once the chat is longer than the turns "
                       "a reply sees.")
            for old in reversed(versions[:-1]):
                st.caption(f"Version of {old.created_at:%Y-%m-%d %H:%M} ({old.reason}, {old.messages} messages): "
                           f"{old.content}")
    for m in messages:
        with st.chat_message(m.role):
            st.markdown(m.content)
            if m.role != "assistant":
                continue
            turn = adapter.recent_exchange(m.id)
            if turn is not None:
                show_turn_extras(turn)
            run = runs.get(m.id)
            if run is not None:
                label = f"⚙️ What the memory pipeline did ({ui.plural(len(run.changes), 'change')})"
                with st.expander(label, expanded=m.id == messages[-1].id):
                    views.show_run(run, m.id)
            elif m.id in by_message:
                st.caption("⚙️ Learnt with the later messages of this session: its run is under the last reply.")
            elif turn is not None and turn.state == "processing":
                st.caption("⏳ Updating memory…")
            elif turn is not None and turn.state == "failed":
                st.warning(turn.error or "The memory update failed.")

    streamed = False
    for turn in adapter.pending(session_id):
        if turn.assistant_message is not None:
            continue  # answered: shown above from the database
        with st.chat_message("assistant"):
            if turn.state == "queued":
                st.caption("Waiting for the previous reply…")
            st.write_stream(turn.follow())
            streamed = True
    for turn in my_turns:
        if turn.session_id == session_id and turn.state == "failed" and turn.assistant_message is None:
            st.error(turn.error or "The reply failed. Your message was saved.")
    if streamed:
        st.rerun()  # show the saved replies (and their traces once ready)

    @st.fragment(run_every=1.0)
    def wait_for_memory() -> None:
        """Poll while exchanges of this session are still being learnt from; redraw the page when they are done."""
        if not adapter.pending(open_session):
            if st.session_state.pop("chat_waiting", False):
                adapter.learnt_from_chat()  # what was learnt: the sidebar's counts, the browser's pages
                st.rerun(scope="app")
            return
        st.session_state["chat_waiting"] = True
        st.caption("⏳ Learning from the conversation…")

    if adapter.pending(session_id) or st.session_state.get("chat_waiting"):
        wait_for_memory()
else:
    with st.container(border=True):
        st.markdown(
            "**Welcome to TiMemory.** It turns conversations into long-term memories about the user: after each "
            "reply it extracts facts, compares them with what it already knows, and adds, merges or outdates "
            "memories — every step is shown under the reply.\n\n"
            "- **Demo chats**: pick one in *Session* above; the demo users (switch in the sidebar) each have a few.\n"
            "- **Try it**: type something about yourself below, then tell it something that changes it "
            "(\"I moved to Berlin\") and watch the old memory become outdated.\n"
            "- **Memories** lists and edits what is remembered; **Embedding map** shows it in 2-D.")

if "small local model" in adapter.info().get("llm", ""):
    st.caption("Replies and facts come from a 135M-parameter local model: expect weak facts. "
               "Set OPENAI_API_KEY or OPENAI_BASE_URL for better ones.")
