"""Users and their sessions; delete a session or all of a user's data (with confirmation)."""

import pandas as pd
import streamlit as st

from dashboard import adapter, router, ui
from timemory import TiMemoryError

router.ensure_router()
st.header("👥 Sessions & users")

users = adapter.users()
st.dataframe(pd.DataFrame([u.model_dump() for u in users],
                          columns=["id", "created_at", "sessions", "memories_active", "memories_outdated"]),
             hide_index=True, width="stretch")

if not users:
    st.info("No users yet.")
    st.stop()
ids = [u.id for u in users]
current = ui.current_user()
pick = st.selectbox("User", ids, index=ids.index(current) if current in ids else 0, key="admin_user")
if pick != current:
    st.button(f"Switch to '{pick}'", key="admin_switch_user", on_click=ui.switch_user, args=(pick,))
sessions = adapter.sessions(pick)
summaries = {s.session_id: s for s in ui.guarded(lambda: adapter.current_summaries(pick)) or []}
st.dataframe(pd.DataFrame([{**s.model_dump(), "summary": summaries[s.id].content if s.id in summaries else None,
                            "summarised": f"{summaries[s.id].messages} messages, {summaries[s.id].reason}"
                            if s.id in summaries else None} for s in sessions],
                          columns=["title", "message_count", "summary", "summarised", "created_at", "updated_at",
                                   "id"]),
             hide_index=True, width="stretch")
st.caption("Each chat's rolling summary (kept up to date every few turns, at a change of topic and when the chat goes "
           "idle; its earlier versions are on the chat page).")


def delete_session(p: dict) -> None:
    adapter.delete_session(p["session"], user_id=p["user"])


def delete_user(p: dict) -> None:
    removed = adapter.delete_user(p["user"])
    ui.forget_user(p["user"])
    parts = [f"{n} {table.replace('_', ' ')}" for table, n in removed.items() if n]
    ui.flash(f"Erased user '{p['user']}': " + (", ".join(parts) if parts else "they had no rows") + ".")


c1, c2 = st.columns(2)
if sessions:
    sid = c1.selectbox("Session", [s.id for s in sessions], format_func=lambda i: next(
        s.title for s in sessions if s.id == i), key="admin_session")
    if c1.button("Delete session", key="delete_session_btn"):
        ui.ask("session", user=pick, session=sid)
if c2.button(f"Delete all data of '{pick}'", key="delete_user_btn"):
    ui.ask("user", user=pick)
ui.confirmation("session", "Delete this session?",
                "This deletes the session and its messages (memories learnt from it stay). It cannot be undone.",
                delete_session)
ui.confirmation("user", "Delete this user?",
                f"This erases user '{pick}' everywhere: every memory, event, session, message, trace, queued job "
                "and API key, their cached model answers and their records in experiments. Nothing is kept; it "
                "cannot be undone.", delete_user)

st.subheader("The demo, live")
st.caption("The demo users' memories were learnt by the real pipeline from answers written by hand (the sidebar says "
           "so). Replay the same conversations with the configured model, into users live-maya, live-tomas and "
           "live-aisha, to see what it makes of them; the Lab page shows the replay's progress.")
if st.button("Replay the demo with the configured model", key="demo_live"):
    try:
        adapter.replay_demo()
    except TiMemoryError as exc:
        st.error(f"{exc} (code: {exc.code})")
    else:
        st.success("Replaying in the background: follow it on the Lab page.")
