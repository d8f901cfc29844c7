"""What a browser session holds and shows beside the data: the current user, the URL's query parameters, the open
confirmation dialog, a message shown once, and core errors shown as readable messages.

Nothing here reads or writes memory: the dialogs run the write they are given (an :mod:`dashboard.adapter` function,
which clears the caches it affects). Session-state keys are named in :mod:`dashboard.state`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import streamlit as st

from dashboard import state
from timemory import TiMemoryError

T = TypeVar("T")


def guarded(action: Callable[[], T], success: str | None = None) -> T | None:
    """Run a core call; show its error as a readable message instead of a traceback."""
    try:
        result = action()
    except TiMemoryError as exc:
        st.error(f"{exc} (code: {exc.code})")
        return None
    if success:
        st.toast(success)
    return result


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


# --- the current user -------------------------------------------------------------------------------------------------

def current_user() -> str:
    return str(st.session_state.get(state.USER) or "demo")


def choose_user(known: list[str], erased: Callable[[str], bool]) -> str:
    """The current user: kept in the session, else taken from the URL (?user=), else the first known user. A user
    erased meanwhile (in another tab, or a stale link) is never acted for: the page says so and shows another user,
    and whatever this run was about to do for them (a message sent from a stale tab) is dropped."""
    kept = st.session_state.get(state.USER)
    wanted = kept or from_url(state.Q_USER)
    if wanted and wanted not in known and erased(wanted):
        instead = known[0] if known else "demo"
        if state.FLASH not in st.session_state:  # the page that erased them has said so already
            flash(f"User '{wanted}' was erased, so nothing more is done for them; showing '{instead}'. To start "
                    "again under that id, create it with New user.")
        switch_user(instead)
        set_url(**{state.Q_USER: instead})
        st.rerun()
    if not kept:
        st.session_state[state.USER] = wanted if wanted in known else (known[0] if known else "demo")
    return current_user()


def switch_user(user_id: str) -> None:
    """Make ``user_id`` current (from a callback or before the picker is drawn); the chat session is per user."""
    st.session_state[state.USER] = user_id
    st.session_state.pop(state.CHAT_SESSION, None)


def forget_user(user_id: str) -> None:
    """``user_id`` was deleted: when it was the current user, the next run picks another."""
    if st.session_state.get(state.USER) == user_id:
        del st.session_state[state.USER]


# --- the URL ----------------------------------------------------------------------------------------------------------

def from_url(key: str) -> str | None:
    """A query parameter's value (its last, when repeated), or None: what a link or a reload asks a page to show."""
    return st.query_params.get(key)


def set_url(**params: str | Iterable[str] | None) -> None:
    """Mirror page state in the URL's query parameters; empty values are removed."""
    for key, value in params.items():
        values = [value] if isinstance(value, str) else list(value or [])
        values = [v for v in values if v]
        current = st.query_params.get_all(key)
        if values == current:
            continue
        if values:
            st.query_params[key] = values if len(values) > 1 else values[0]
        else:
            del st.query_params[key]


def open_memory(memory_id: str) -> None:
    """Show one memory in the memory browser, for the current user."""
    st.session_state[state.FOCUS_MEMORY] = memory_id
    st.switch_page("pages/memories.py", query_params={state.Q_USER: current_user(), state.Q_MEMORY: memory_id})


# --- dialogs and messages ---------------------------------------------------------------------------------------------

def ask(name: str, **payload: Any) -> None:
    """Open the confirmation named ``name`` (drawn by :func:`confirmation` on this and later runs)."""
    st.session_state[state.CONFIRM] = {"name": name, **payload}


def asked() -> dict[str, Any]:
    """The payload of the open confirmation (empty when none is open)."""
    return dict(st.session_state.get(state.CONFIRM) or {})


def confirmation(name: str, title: str, message: str, on_confirm: Callable[[dict[str, Any]], Any],
                 button: str = "Delete") -> None:
    """Draw the confirm dialog while it is open; it stays open across reruns until confirmed or dismissed.
    ``on_confirm`` gets the payload given to :func:`ask` and does the write (an adapter function)."""
    pending = st.session_state.get(state.CONFIRM)
    if not pending or pending.get("name") != name:
        return

    def close() -> None:
        st.session_state.pop(state.CONFIRM, None)

    @st.dialog(title, on_dismiss=close)
    def _dialog() -> None:
        st.warning(message)
        c1, c2 = st.columns(2)
        if c1.button(button, type="primary", key=f"confirm-{name}"):
            close()
            guarded(lambda: on_confirm(pending))
            st.rerun()
        if c2.button("Cancel", key=f"cancel-{name}"):
            close()
            st.rerun()

    _dialog()


def flash(message: str) -> None:
    """Show ``message`` once, after the next rerun."""
    st.session_state[state.FLASH] = message


def refused(message: str) -> None:
    """Show ``message`` as an error once, after the next rerun (a write that was refused whole)."""
    st.session_state[state.FLASH] = ("error", message)


def show_flash() -> None:
    message = st.session_state.pop(state.FLASH, None)
    if isinstance(message, tuple):
        st.error(message[1])
    elif message:
        st.success(message)
