"""The dashboard's router and sidebar (current user, what is in use, memory counts).

``streamlit_app.py`` runs :func:`run_app`; a page opened without it (see :func:`dashboard.adapter.ensure_router`)
runs it too, so every page always has the router's sidebar and state.
"""

from __future__ import annotations

import streamlit as st

from dashboard import adapter, state


def _create_user() -> None:
    """Runs before the next script run, so the user picker can be switched to the new user."""
    new_user = st.session_state.get("new_user_id", "").strip()
    if new_user and adapter.guarded(lambda: adapter.memory().users.ensure(user_id=new_user)) is None:
        adapter.after_user_write()
        adapter.switch_user(new_user)


def _pick_user() -> None:
    adapter.switch_user(st.session_state[state.USER_PICKER])


def sidebar() -> None:
    with st.sidebar:
        st.title("🧠 TiMemory")
        summaries = adapter.guarded(adapter.users) or []
        user = adapter.choose_user([u.id for u in summaries])
        options = sorted({u.id for u in summaries} | {user})
        st.session_state[state.USER_PICKER] = user  # the picker always shows the current user, whatever set it
        st.selectbox("User", options, key=state.USER_PICKER, on_change=_pick_user)
        adapter.set_url(**{state.Q_USER: user})
        with st.popover("New user"):
            st.text_input("User id", max_chars=128, key="new_user_id")
            st.button("Create", key="create_user", on_click=_create_user)
        summary = next((u for u in summaries if u.id == user), None)
        c1, c2 = st.columns(2)
        c1.metric("Active", summary.memories_active if summary else 0)
        c2.metric("Outdated", summary.memories_outdated if summary else 0)
        st.divider()
        backends = adapter.info()
        st.caption(f"**Database** · {backends['database']}")
        st.caption(f"**LLM** · {backends['llm']}")
        st.caption(f"**Embedder** · {backends['embedder']}")


def run_app() -> None:
    st.set_page_config(page_title="TiMemory", page_icon="🧠", layout="wide")
    page = adapter.navigation()
    adapter.mark_routed()
    sidebar()
    page.run()
