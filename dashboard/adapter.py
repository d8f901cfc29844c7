"""The dashboard's one seam to the core: every read and every write a page does is a function here.

Backends are built once per server process (``st.cache_resource``); read results are cached with
``st.cache_data``, and each write function clears exactly the cached readers it affects (:data:`CLEARS` lists
them), so pages never clear a cache. Readers keyed by the user's data version (``version``) need no clearing on
memory writes: a write moves the version. Tests inject doubles with :func:`override` before running the app.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import streamlit as st

from dashboard import lab_jobs
from timemory import (
    ChatExchange,
    ChatSession,
    Experiment,
    Memory,
    MemoryEdit,
    MemoryEvent,
    MemoryFilter,
    Message,
    PipelineResult,
    RunDiff,
    SearchHit,
    SearchMode,
    SearchScope,
    Settings,
    TiMem,
    UserStats,
)
from timemory.core import (
    DEFAULT_SEARCH_MODE,
    DEFAULT_SEARCH_SCOPE,
    EventLog,
    in_reply_order,
    memories_to_csv,
    memories_to_json,
)
from timemory.lab import Method, ReplayJob, ReplayJobs, place_query, project
from timemory.store import Summary
from timemory.wiring import describe

P = ParamSpec("P")
R = TypeVar("R")

_override: dict[str, Any] = {}


def override(*, memory: TiMem | None = None, info: dict[str, str] | None = None,
             data_dir: Path | None = None) -> None:
    """Use this TiMem instead of the configured one (tests pass doubles here); cached reads are dropped."""
    st.cache_data.clear()
    event_log.clear()
    _override.clear()
    if data_dir is not None:
        _override["data_dir"] = data_dir
    if memory is not None:
        _override.update(memory=memory, info=info or memory.describe())


@st.cache_resource(show_spinner="Loading the memory engine…")
def _backends() -> tuple[TiMem, dict[str, str]]:
    settings = Settings()
    tm = TiMem.from_settings(settings)
    tm.worker().start()  # learns from exchanges queued by the API or left behind by a process that stopped
    return tm, describe(settings)


def _tm() -> TiMem:
    return _override["memory"] if "memory" in _override else _backends()[0]


def info() -> dict[str, str]:
    """What is in use: ``database``, ``llm`` and ``embedder``, as the sidebar shows them."""
    return _override["info"] if "info" in _override else _backends()[1]


def datasets_dir() -> Path:
    """Where uploaded datasets are kept (so a replay can be resumed from the same file)."""
    return Path(_override.get("data_dir") or Settings().data_dir) / "datasets"


def max_content_chars() -> int:
    return _tm().max_content_chars


def similar_k() -> int:
    return _tm().similar_k


def similarity_threshold() -> float:
    return _tm().similarity_threshold


# --- cached reads -----------------------------------------------------------------------------------------------------

@st.cache_data(ttl=30, show_spinner=False)
def users() -> list[UserStats]:
    return _tm().users.list()


@st.cache_data(ttl=30, show_spinner=False)
def sessions(user_id: str) -> list[ChatSession]:
    return _tm().sessions.list(user_id=user_id)


@st.cache_data(ttl=30, show_spinner=False)
def memory_count(user_id: str, where: MemoryFilter) -> int:
    return _tm().count_memories(user_id=user_id, where=where)


@st.cache_data(ttl=30, show_spinner=False)
def memories_page(user_id: str, where: MemoryFilter, limit: int, offset: int) -> list[Memory]:
    return _tm().list_memories(user_id=user_id, where=where, limit=limit, offset=offset)


def version(user_id: str) -> int:
    return _tm().users.version(user_id=user_id)


@st.cache_data(ttl=300, show_spinner=False)
def run_models(user_id: str, version: int) -> set[str]:
    """The models the user's latest pipeline runs were made with (the demo's say they were scripted)."""
    return {r.llm_model for r in _tm().list_runs(user_id=user_id, limit=50) if r.llm_model}


@st.cache_data(ttl=300, show_spinner=False)
def map_data(user_id: str, version: int, method: Method) -> tuple[list[Memory], np.ndarray, np.ndarray]:
    """Memories, their vectors and 2-D coordinates; cached by user and data version (a write moves the version)."""
    mems, matrix = _tm().memory_embeddings(user_id=user_id)
    return mems, matrix, project(matrix, method)


@st.cache_resource(ttl=300, show_spinner=False, max_entries=8)
def event_log(user_id: str, version: int) -> EventLog:
    """Every event of the user, indexed; one shared copy per data version (read-only: nothing mutates it)."""
    return EventLog(user_id, _tm().events(user_id=user_id))


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
    return _tm().count_runs(user_id=user_id, until=until)


@st.cache_data(ttl=10, show_spinner=False, max_entries=64)
def runs(user_id: str, until: datetime, offset: int, limit: int, version: int) -> list[PipelineResult]:
    """One page of the user's runs up to ``until``, oldest first."""
    return _tm().list_runs(user_id=user_id, until=until, offset=offset, limit=limit, oldest_first=True)


@st.cache_data(ttl=5, show_spinner=False)
def experiments() -> list[Experiment]:
    return _tm().list_experiments()


@st.cache_resource
def replay_jobs() -> ReplayJobs:
    """The server process's background replays (they outlive page switches, reloads and browser sessions)."""
    return ReplayJobs()


# --- reads that are not cached (each is asked for once per click or per drawn item) ----------------------------------

def search(query: str, *, user_id: str, limit: int, types: Sequence[str] | None = None,
           statuses: Sequence[str] | None = ("active",), mode: SearchMode = DEFAULT_SEARCH_MODE,
           scope: SearchScope = DEFAULT_SEARCH_SCOPE) -> list[SearchHit]:
    return _tm().search(query, user_id=user_id, limit=limit, types=types, statuses=statuses, mode=mode, scope=scope)


def get_memories(memory_ids: Sequence[str], *, user_id: str) -> dict[str, Memory]:
    return _tm().get_memories(list(memory_ids), user_id=user_id)


def history(memory_id: str, *, user_id: str) -> list[MemoryEvent]:
    return _tm().history(memory_id, user_id=user_id)


def supersession_chain(memory_id: str, *, user_id: str) -> list[Memory]:
    return _tm().supersession_chain(memory_id, user_id=user_id)


def _matching(user_id: str, where: MemoryFilter) -> list[Memory]:
    """Every memory the filter matches (all pages)."""
    return _tm().list_memories(user_id=user_id, where=where, limit=max(memory_count(user_id, where), 1), offset=0)


def export_csv(user_id: str, where: MemoryFilter) -> str:
    """Every memory the filter matches, as CSV (read when a download is clicked)."""
    return memories_to_csv(_matching(user_id, where))


def export_json(user_id: str, where: MemoryFilter, *, with_history: bool) -> str:
    """Every memory the filter matches, as JSON, with each one's history when asked."""
    mems = _matching(user_id, where)
    return memories_to_json(mems, _tm().histories([m.id for m in mems], user_id=user_id) if with_history else None)


def embed_query(query: str) -> np.ndarray:
    return _tm().embed([query])[0]


def place_on_map(vector: np.ndarray, matrix: np.ndarray, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where a query vector lands on a map, and its nearest points there (best first)."""
    return place_query(vector, matrix, coords)


def messages(session_id: str, *, user_id: str) -> list[Message]:
    """The session's messages, each reply under the message it answers (also when two were sent before the first
    was answered)."""
    return in_reply_order(_tm().sessions.messages(session_id, user_id=user_id))


def current_summaries(user_id: str) -> list[Summary]:
    """The latest rolling summary of each of the user's chats."""
    return _tm().summaries.current(user_id=user_id)


def summary_history(user_id: str, session_id: str) -> list[Summary]:
    """Every version of one chat's rolling summary, oldest first."""
    return _tm().summaries.history(user_id=user_id, session_id=session_id)


def runs_by_message(session_id: str, *, user_id: str) -> dict[str, PipelineResult]:
    return _tm().chat.runs_by_message(session_id, user_id=user_id)


def recent_exchange(message_id: str) -> ChatExchange | None:
    """What this process knows about the exchange that produced a reply (given memories, notes, failures)."""
    return _tm().chat.recent_exchange(message_id)


def pending(session_id: str) -> list[ChatExchange]:
    """The session's exchanges still being answered or learnt from in this process."""
    return _tm().chat.pending(session_id)


def replays() -> list[ReplayJob]:
    return replay_jobs().all()


def known_datasets() -> list[str]:
    """The dataset files already kept for the Lab, by name."""
    return lab_jobs.known_datasets(datasets_dir())


# --- writes, and what each clears -------------------------------------------------------------------------------------

_MEMORY = (memory_count, memories_page, users)  # the browser's pages and counts, and the sidebar's counts
_SESSIONS = (sessions, users)  # the session lists and the per-user session counts
_VERSIONED = (run_models, map_data, event_log, state_at, counts_over_time, run_count, runs)
CLEARS: dict[str, tuple[str, ...]] = {}  # write function → the readers it clears (documentation and tests)


def _clears(*readers: Any) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The write clears these readers when it returns or fails (a failed write may have written part)."""
    unique = tuple(dict.fromkeys(readers))

    def wrap(write: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(write)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return write(*args, **kwargs)
            finally:
                for reader in unique:
                    reader.clear()

        CLEARS[write.__name__] = tuple(r.__name__ for r in unique)
        return run
    return wrap


@_clears(users)
def create_user(user_id: str) -> None:
    _tm().users.ensure(user_id=user_id)


@_clears(*_MEMORY, *_SESSIONS, *_VERSIONED, experiments)
def delete_user(user_id: str) -> dict[str, int]:
    """Erase the user everywhere (their records in experiments too); a new user of that id starts again at
    version 0, so the version-keyed readers are cleared as well. Returns the rows removed per table."""
    return _tm().users.delete(user_id=user_id)


def was_erased(user_id: str) -> bool:
    """Whether the user was erased (and not created again): a stale tab or link must not act for them."""
    return _tm().users.erased(user_id=user_id)


@_clears(*_SESSIONS)
def delete_session(session_id: str, *, user_id: str) -> None:
    _tm().sessions.delete(session_id, user_id=user_id)


@_clears(sessions)
def rename_session(session_id: str, *, user_id: str, title: str) -> ChatSession:
    return _tm().sessions.rename(session_id, user_id=user_id, title=title)


@_clears(*_SESSIONS)
def submit_message(text: str, *, user_id: str, session_id: str | None) -> ChatExchange:
    """Save the message (in a new session when ``session_id`` is None) and queue its reply in the background."""
    return _tm().chat.submit(text, user_id=user_id, session_id=session_id)


@_clears(*_MEMORY, *_SESSIONS)
def learnt_from_chat() -> None:
    """The chat's exchanges were answered and learnt from in the background: memories changed, and a new chat
    got its title."""


@_clears(*_MEMORY)
def add_memory(content: str, *, user_id: str, type: str, status: str) -> Memory:
    return _tm().add(content, user_id=user_id, type=type, status=status)


@_clears(*_MEMORY)
def edit_memories(edits: Sequence[MemoryEdit], *, user_id: str) -> list[Memory]:
    return _tm().edit_memories(edits, user_id=user_id)


@_clears(*_MEMORY)
def set_status(memory_ids: Sequence[str], *, user_id: str, status: str) -> list[Memory]:
    return _tm().set_status(memory_ids, user_id=user_id, status=status)


@_clears(*_MEMORY)
def delete_memories(memory_ids: Sequence[str], *, user_id: str) -> None:
    _tm().delete_memories(memory_ids, user_id=user_id)


@_clears(experiments)
def start_replay(request: lab_jobs.ReplayRequest) -> ReplayJob:
    """Start the Lab's replay in the background (its experiment is recorded as running at once)."""
    return lab_jobs.start_replay(_tm(), replay_jobs(), datasets_dir(), request, base_url=Settings().openai_base_url)


@_clears(experiments)
def resume_replay(job: ReplayJob) -> ReplayJob:
    return lab_jobs.resume(_tm(), replay_jobs(), job)


def stop_replay(job: ReplayJob) -> None:
    """Ask a replay to stop after the unit it is running (its experiment is recorded when it stops)."""
    job.stop()


@_clears(experiments)
def replay_demo() -> ReplayJob:
    """Replay the demo's conversations with the configured model, into the live- users."""
    return lab_jobs.start_demo(_tm(), replay_jobs())


@_clears(*_MEMORY, *_SESSIONS, experiments)
def replays_ended() -> None:
    """The background replays ended: their users, sessions and memories, and their experiments' results."""
