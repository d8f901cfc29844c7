"""The dashboard's router and sidebar (current user, what is in use, memory counts).

``streamlit_app.py`` runs :func:`run_app`; a page opened without it (see :func:`ensure_router`) runs it too, so every
page always has the router's sidebar and state.
"""

from __future__ import annotations

import threading
from typing import Any

import streamlit as st

from dashboard import adapter, state, ui
from dashboard.nav import navigation
from timemory.lab import SCRIPTED_MODEL

_run = threading.local()  # each browser session's script runs in one thread, one run after another


def mark_routed() -> None:
    """The router is running this script run (it calls this before running the page)."""
    _run.routed = True
    st.session_state[state.ROUTED] = True


def ensure_router() -> None:
    """Called first by every page: make sure the router runs this page.

    A ``pages/`` folder beside the entry point puts Streamlit in its legacy pages-folder mode until a script calls
    ``st.navigation``: a server whose first request is a page URL (/memories) runs that page file alone, without
    the router and its sidebar, and AppTest does so on every run after ``switch_page``. Then the router is run
    here, in the same script run (so no widget event is lost): it declares the pages, which switches Streamlit to
    ``st.navigation`` for good, draws the sidebar and runs this page again, routed; the unrouted run stops.
    """
    routed = getattr(_run, "routed", False)
    _run.routed = False  # consumed: the next script run must be routed again
    if not routed:
        run_app()
        st.stop()


def _create_user() -> None:
    """Runs before the next script run, so the user picker can be switched to the new user."""
    new_user = st.session_state.get("new_user_id", "").strip()
    if new_user:
        ui.guarded(lambda: adapter.create_user(new_user))
        ui.switch_user(new_user)  # also when the id was refused (as before): the error says why


def _pick_user() -> None:
    ui.switch_user(st.session_state[state.USER_PICKER])


def sidebar() -> None:
    with st.sidebar:
        st.title("🧠 TiMemory")
        summaries = ui.guarded(adapter.users) or []
        # a first open lands on the user with the most to show: memories that changed, then memories
        richest = sorted(summaries, key=lambda u: (-u.memories_outdated, -u.memories_active, u.id))
        user = ui.choose_user([u.id for u in richest], adapter.was_erased)
        options = sorted({u.id for u in summaries} | {user})
        st.session_state[state.USER_PICKER] = user  # the picker always shows the current user, whatever set it
        st.selectbox("User", options, key=state.USER_PICKER, on_change=_pick_user)
        ui.set_url(**{state.Q_USER: user})
        with st.popover("New user"):
            st.text_input("User id", max_chars=128, key="new_user_id")
            st.button("Create", key="create_user", on_click=_create_user)
        summary = next((u for u in summaries if u.id == user), None)
        c1, c2 = st.columns(2)
        c1.metric("Active", summary.memories_active if summary else 0)
        c2.metric("Outdated", summary.memories_outdated if summary else 0)
        st.divider()
        if SCRIPTED_MODEL in (ui.guarded(lambda: adapter.run_models(user, adapter.version(user))) or set()):
            st.caption(f"**Demo** · {user}'s memories were learnt by the real pipeline from the demo's scripted "
                       "model answers (no model ran). Replay the demo with the configured model on the Sessions & "
                       "users page.")
        backends = adapter.info()
        st.caption(f"**Database** · {backends['database']}")
        st.caption(f"**LLM** · {backends['llm']}")
        st.caption(f"**Embedder** · {backends['embedder']}")


def run_app(page: Any = None) -> None:
    """Run the page (``page``, when the entry point declared the pages already) under the router's sidebar."""
    page = page or navigation()
    mark_routed()
    sidebar()
    ui.show_flash()  # what the last action did, on whichever page it left the person
    page.run()
