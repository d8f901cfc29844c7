"""The only module that talks to Streamlit's caches. Pages call these functions and draw.

Backends are built once per server process (``st.cache_resource``); read results are cached with
``st.cache_data`` and a write clears only the readers it affects. Per-user state lives in ``st.session_state``
(keys in :mod:`dashboard.state`); what a reload must keep is also in the URL. Tests inject doubles with
:func:`override` before running the app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import streamlit as st

from dashboard import state
from timemory import (
    ChatService,
    ChatSession,
    Experiment,
    Memory,
    MemoryFilter,
    PipelineResult,
    RunDiff,
    Settings,
    TiMem,
    TiMemoryError,
    UserSummary,
)
from timemory.core import EventLog
from timemory.lab import Method, ReplayJobs, project
from timemory.wiring import describe

T = TypeVar("T")

_override: dict[str, Any] = {}


def override(*, memory: TiMem | None = None, info: dict[str, str] | None = None,
             data_dir: Path | None = None) -> None:
    """Use this engine instead of the configured one (tests pass doubles here); cached reads are dropped."""
    st.cache_data.clear()
    event_log.clear()
    _override.clear()
    if data_dir is not None:
        _override["data_dir"] = data_dir
    if memory is not None:
        _override.update(memory=memory, info=info or memory.describe())


@st.cache_resource(show_spinner="Loading the memory engine…")
def _engine() -> tuple[TiMem, dict[str, str]]:
    settings = Settings()
    tm = TiMem.from_settings(settings)
    tm.worker().start()  # learns from exchanges queued by the API or left behind by a process that stopped
    return tm, describe(settings)


def memory() -> TiMem:
    return _override["memory"] if "memory" in _override else _engine()[0]


def chat() -> ChatService:
    return memory().chat


def info() -> dict[str, str]:
    return _override["info"] if "info" in _override else _engine()[1]


def datasets_dir() -> Path:
    """Where uploaded datasets are kept (so a replay can be resumed from the same file)."""
    return Path(_override.get("data_dir") or Settings().data_dir) / "datasets"


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


# --- cached reads, and what each write clears -------------------------------------------------------------------------

@st.cache_data(ttl=30, show_spinner=False)
def users() -> list[UserSummary]:
    return memory().users.list()


@st.cache_data(ttl=30, show_spinner=False)
def sessions(user_id: str) -> list[ChatSession]:
    return memory().sessions.list(user_id=user_id)


@st.cache_data(ttl=30, show_spinner=False)
def memory_count(user_id: str, where: MemoryFilter) -> int:
    return memory().count_memories(user_id=user_id, where=where)


@st.cache_data(ttl=30, show_spinner=False)
def memories_page(user_id: str, where: MemoryFilter, limit: int, offset: int) -> list[Memory]:
    return memory().list_memories(user_id=user_id, where=where, limit=limit, offset=offset)


@st.cache_data(ttl=300, show_spinner=False)
def run_models(user_id: str, version: int) -> set[str]:
    """The models the user's latest pipeline runs were made with (the demo's say they were scripted)."""
    return {r.llm_model for r in memory().list_runs(user_id=user_id, limit=50) if r.llm_model}


@st.cache_data(ttl=300, show_spinner=False)
def map_data(user_id: str, version: int, method: Method) -> tuple[list[Memory], np.ndarray, np.ndarray]:
    """Memories, their vectors and 2-D coordinates; cached by user and data version (a write moves the version)."""
    mems, matrix = memory().memory_embeddings(user_id=user_id)
    return mems, matrix, project(matrix, method)


def version(user_id: str) -> int:
    return memory().users.version(user_id=user_id)


@st.cache_resource(ttl=300, show_spinner=False, max_entries=8)
def event_log(user_id: str, version: int) -> EventLog:
    """Every event of the user, indexed; one shared copy per data version (read-only: nothing mutates it)."""
    return EventLog(user_id, memory().events(user_id=user_id))


@st.cache_data(ttl=300, show_spinner=False, max_entries=64)
def state_at(user_id: str, at: datetime, version: int) -> list[Memory]:
    return event_log(user_id, version).state_at(at)


@st.cache_data(ttl=300, show_spinner=False, max_entries=8)
def counts_over_time(user_id: str, version: int) -> list[dict[str, Any]]:
    return event_log(user_id, version).counts_over_time()


def run_diff(run: PipelineResult, version: int) -> RunDiff:
    """What one run changed, from the user's cached event log."""
    return RunDiff(run_id=run.run_id, user_id=run.user_id, created_at=run.created_at, status=run.status,
                   changes=event_log(run.user_id, version).diff(run.run_id))


@st.cache_data(ttl=10, show_spinner=False, max_entries=64)
def run_count(user_id: str, until: datetime, version: int) -> int:
    """How many runs the user had up to ``until`` (a run that changed nothing moves no version: the short ttl
    picks it up)."""
    return memory().count_runs(user_id=user_id, until=until)


@st.cache_data(ttl=10, show_spinner=False, max_entries=64)
def runs(user_id: str, until: datetime, offset: int, limit: int, version: int) -> list[PipelineResult]:
    """One page of the user's runs up to ``until``, oldest first."""
    return memory().list_runs(user_id=user_id, until=until, offset=offset, limit=limit, oldest_first=True)


@st.cache_data(ttl=5, show_spinner=False)
def experiments() -> list[Experiment]:
    return memory().list_experiments()


@st.cache_resource
def replay_jobs() -> ReplayJobs:
    """The server process's background replays (they outlive page switches, reloads and browser sessions)."""
    return ReplayJobs()


def after_memory_write() -> None:
    """Memories changed: the browser's pages and counts, and the sidebar's per-user counts."""
    memory_count.clear()
    memories_page.clear()
    users.clear()


def after_session_write() -> None:
    """Sessions or messages changed: the session lists and the per-user session counts."""
    sessions.clear()
    users.clear()


def after_user_write() -> None:
    """Users were added or deleted: everything keyed by user."""
    after_memory_write()
    after_session_write()


def current_user() -> str:
    return str(st.session_state.get(state.USER) or "demo")


def choose_user(known: list[str]) -> str:
    """The current user: kept in the session, else taken from the URL (?user=), else the first known user."""
    if not st.session_state.get(state.USER):
        wanted = st.query_params.get(state.Q_USER)
        st.session_state[state.USER] = wanted if wanted in known else (known[0] if known else "demo")
    return current_user()


def switch_user(user_id: str) -> None:
    """Make ``user_id`` current (from a callback or before the picker is drawn); the chat session is per user."""
    st.session_state[state.USER] = user_id
    st.session_state.pop(state.CHAT_SESSION, None)


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


def url_values(key: str, allowed: Iterable[str] | None = None) -> list[str]:
    """A query parameter's values, keeping only allowed ones when a list is given."""
    values = st.query_params.get_all(key)
    if allowed is not None:
        allowed = set(allowed)
        values = [v for v in values if v in allowed]
    return values


def open_memory(memory_id: str) -> None:
    """Show one memory in the memory browser, for the current user."""
    st.session_state[state.FOCUS_MEMORY] = memory_id
    st.switch_page("pages/memories.py", query_params={state.Q_USER: current_user(), state.Q_MEMORY: memory_id})


# --- dialogs ----------------------------------------------------------------------------------------------------------

def ask(name: str, **payload: Any) -> None:
    """Open the confirmation named ``name`` (drawn by :func:`confirmation` on this and later runs)."""
    st.session_state[state.CONFIRM] = {"name": name, **payload}


def confirmation(name: str, title: str, message: str, on_confirm: Callable[[dict[str, Any]], Any],
                 button: str = "Delete", after: Callable[[], None] = after_user_write) -> None:
    """Draw the confirm dialog while it is open; it stays open across reruns until confirmed or dismissed."""
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
            after()
            st.rerun()
        if c2.button("Cancel", key=f"cancel-{name}"):
            close()
            st.rerun()

    _dialog()


def flash(message: str) -> None:
    """Show ``message`` once, after the next rerun."""
    st.session_state[state.FLASH] = message


def show_flash() -> None:
    if message := st.session_state.pop(state.FLASH, None):
        st.success(message)


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"
