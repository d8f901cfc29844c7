"""The only module that talks to Streamlit's caches. Pages call these functions and draw.

Backends are built once per server process (``st.cache_resource``); read results are cached with
``st.cache_data`` and cleared after every write. Per-user state lives in ``st.session_state``.
Tests inject doubles with :func:`override` before running the app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import streamlit as st

from timemory import Settings, TiMem, TiMemoryError
from timemory.backends import describe
from timemory.chat import ChatService
from timemory.projection import Method, project
from timemory.schemas import ChatSession, Memory, UserSummary

T = TypeVar("T")

_override: dict[str, Any] = {}


def override(*, memory: TiMem | None = None, chat: ChatService | None = None,
             info: dict[str, str] | None = None) -> None:
    """Use these backends instead of the configured ones (tests pass doubles here)."""
    _override.clear()
    if memory is not None:
        _override.update(memory=memory, chat=chat or ChatService(memory, memory.llm), info=info or {
            "database": memory.store.backend, "llm": getattr(memory.llm, "model", "none"),
            "embedder": memory.embedder.name})


@st.cache_resource(show_spinner="Loading the memory engine…")
def _engine() -> tuple[TiMem, ChatService, dict[str, str]]:
    settings = Settings()
    tm = TiMem.from_settings(settings)
    assert tm.llm is not None
    return tm, ChatService(tm, tm.llm), describe(settings)


def memory() -> TiMem:
    return _override["memory"] if _override else _engine()[0]


def chat() -> ChatService:
    return _override["chat"] if _override else _engine()[1]


def info() -> dict[str, str]:
    return _override["info"] if _override else _engine()[2]


def after_write() -> None:
    st.cache_data.clear()


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


# --- cached reads ---------------------------------------------------------------------------------------------------

@st.cache_data(ttl=30, show_spinner=False)
def users() -> list[UserSummary]:
    return memory().store.list_users()


@st.cache_data(ttl=30, show_spinner=False)
def sessions(user_id: str) -> list[ChatSession]:
    return memory().store.list_sessions(user_id)


@st.cache_data(ttl=30, show_spinner=False)
def memory_count(user_id: str, types: tuple[str, ...] | None, statuses: tuple[str, ...] | None, text: str,
                 session_id: str | None, since: Any, until: Any) -> int:
    return memory().count_memories(user_id, types, statuses, text, session_id=session_id, since=since, until=until)


@st.cache_data(ttl=30, show_spinner=False)
def memories_page(user_id: str, types: tuple[str, ...] | None, statuses: tuple[str, ...] | None, text: str,
                  session_id: str | None, since: Any, until: Any, limit: int, offset: int) -> list[Memory]:
    return memory().list_memories(user_id, types, statuses, text, limit, offset,
                                  session_id=session_id, since=since, until=until)


@st.cache_data(ttl=300, show_spinner=False)
def map_data(user_id: str, version: int, method: Method) -> tuple[list[Memory], np.ndarray, np.ndarray]:
    """Memories, their vectors and 2-D coordinates; cached by user and data version."""
    mems, matrix = memory().store.memory_embeddings(user_id)
    return mems, matrix, project(matrix, method)


def version(user_id: str) -> int:
    return memory().store.memory_version(user_id)


def ensure_router() -> None:
    """Called first by every page. When a server's first request opens a page URL (/memories), Streamlit runs
    that pages/ script alone, in its old pages-folder mode, without the router's sidebar. Leave that mode once
    and run again: the router then opens the same page. Later runs of the session keep their widget events."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory and not st.session_state.get("_routed"):
        PagesManager.uses_pages_directory = False
        st.rerun()


def mark_routed() -> None:
    """The router ran in this session."""
    st.session_state["_routed"] = True


def current_user() -> str | None:
    return st.session_state.get("user_id")


def ask(name: str, **payload: Any) -> None:
    """Open the confirmation named ``name`` (drawn by :func:`confirmation` on this and later runs)."""
    st.session_state.confirm = {"name": name, **payload}


def confirmation(name: str, title: str, message: str, on_confirm: Callable[[dict[str, Any]], Any],
                 button: str = "Delete") -> None:
    """Draw the confirm dialog while it is open; it stays open across reruns until confirmed or dismissed."""
    pending = st.session_state.get("confirm")
    if not pending or pending.get("name") != name:
        return

    def close() -> None:
        st.session_state.pop("confirm", None)

    @st.dialog(title, on_dismiss=close)
    def _dialog() -> None:
        st.warning(message)
        c1, c2 = st.columns(2)
        if c1.button(button, type="primary", key=f"confirm-{name}"):
            close()
            guarded(lambda: on_confirm(pending))
            after_write()
            st.rerun()
        if c2.button("Cancel", key=f"cancel-{name}"):
            close()
            st.rerun()

    _dialog()
