"""The ``/v1`` endpoints: thin over the ``TiMem`` facade; the acting user comes from the key (see ``app.caller``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from fastapi.sse import format_sse_event
from pydantic import BaseModel, Field

from timemory._facade import TiMem
from timemory.core._chat import ChatExchange
from timemory.core._engine import DEFAULT_SEARCH_MODE, DEFAULT_SEARCH_SCOPE
from timemory.core._jobs import FINISHED
from timemory.errors import InvalidInputError, NotFoundError
from timemory.schemas import (
    ChatSession,
    Job,
    Memory,
    MemoryEdit,
    MemoryEvent,
    MemoryStatus,
    MemoryType,
    Message,
    PipelineResult,
    SearchHit,
    SearchMode,
    SearchScope,
    UserStats,
)
from timemory.service._api.auth import ApiError, Caller, acting_user, admin, tm_of


class ErrorDetail(BaseModel):
    code: str = Field(description="invalid_input, unauthorized, forbidden, not_found, conflict, llm_error, ...")
    message: str


class ErrorOut(BaseModel):
    """Every error the API answers has this shape."""

    error: ErrorDetail


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("No API key, or one that is unknown, revoked or mistyped"), 403: _error("This needs an admin key"),
    404: _error("Not found (another user's rows read as not found)"), 409: _error("Changed meanwhile"),
    422: _error("Invalid input"), 502: _error("The model or the embedder failed"),
    503: _error("The database is not reachable"),
}
router = APIRouter(prefix="/v1", responses=ERRORS)
Tm = Annotated[TiMem, Depends(tm_of)]
User = Annotated[str, Depends(acting_user)]
Admin = Annotated[Caller, Depends(admin)]


# --- memories ------------------------------------------------------------------------------------------------------
class NewMemory(BaseModel):
    content: str = Field(max_length=32_000)
    type: MemoryType = "preference"
    status: MemoryStatus = "active"


class MemoryPatch(BaseModel):
    content: str | None = Field(default=None, max_length=32_000)
    type: MemoryType | None = None
    status: MemoryStatus | None = None
    seen_updated_at: datetime | None = Field(
        default=None, description="the updated_at you saw: the edit is refused (409) if the memory changed since")


class MemoryPage(BaseModel):
    items: list[Memory]
    total: int
    limit: int
    offset: int


@router.post("/memories", status_code=status.HTTP_201_CREATED, tags=["memories"])
def create_memory(body: NewMemory, tm: Tm, user: User) -> Memory:
    """Store one memory as given (no model involved)."""
    return tm.add(body.content, user_id=user, type=body.type, status=body.status)


@router.get("/memories", tags=["memories"])
def list_memories(tm: Tm, user: User,
                  type: Annotated[list[MemoryType] | None, Query()] = None,
                  status: Annotated[list[MemoryStatus] | None, Query()] = None,
                  q: Annotated[str | None, Query(max_length=500, description="text contained")] = None,
                  session_id: Annotated[str | None, Query(max_length=64)] = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                  offset: Annotated[int, Query(ge=0)] = 0) -> MemoryPage:
    """The memory browser's filters and paging, newest first."""
    filters: dict[str, Any] = {"types": type, "statuses": status, "text": q, "session_id": session_id}
    return MemoryPage(items=tm.list_memories(user_id=user, limit=limit, offset=offset, **filters),
                      total=tm.count_memories(user_id=user, **filters), limit=limit, offset=offset)


@router.get("/memories/{memory_id}", tags=["memories"])
def get_memory(memory_id: str, tm: Tm, user: User) -> Memory:
    return tm.get_memory(memory_id, user_id=user)


@router.patch("/memories/{memory_id}", tags=["memories"])
def edit_memory(memory_id: str, body: MemoryPatch, tm: Tm, user: User) -> Memory:
    """A hand edit (re-embedded when the text changes), recorded in the memory's history."""
    edit = MemoryEdit(memory_id=memory_id, content=body.content, type=body.type, status=body.status,
                      seen_updated_at=body.seen_updated_at)
    tm.edit_memories([edit], user_id=user, reason="edited through the API")
    return tm.get_memory(memory_id, user_id=user)


@router.delete("/memories/{memory_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["memories"])
def delete_memory(memory_id: str, tm: Tm, user: User) -> Response:
    tm.delete_memory(memory_id, user_id=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/memories/{memory_id}/history", tags=["memories"])
def memory_history(memory_id: str, tm: Tm, user: User) -> list[MemoryEvent]:
    return tm.history(memory_id, user_id=user)


@router.get("/state", tags=["memories"])
def state_at(at: Annotated[str, Query(max_length=40, description="an ISO date or time; naive means UTC",
                                       examples=["2024-05-01T12:00:00Z"])],
             tm: Tm, user: User) -> list[Memory]:
    """The user's memories exactly as they were at ``at``."""
    try:  # only ISO: a bare number would otherwise be read as seconds since 1970
        moment = datetime.fromisoformat(at)
    except ValueError as exc:
        raise InvalidInputError(f"at={at[:40]!r} is not an ISO date or time (e.g. 2024-05-01T12:00:00Z).") from exc
    return tm.state_at(moment, user_id=user)


# --- search --------------------------------------------------------------------------------------------------------
class SearchRequest(BaseModel):
    query: str = Field(max_length=32_000)
    limit: int = Field(default=5, ge=1, le=100)
    types: list[MemoryType] | None = None
    statuses: list[MemoryStatus] | None = ["active"]
    mode: SearchMode = Field(default=DEFAULT_SEARCH_MODE, description="hybrid (meaning + words), vector or keyword")
    scope: SearchScope = Field(default=DEFAULT_SEARCH_SCOPE, description="memories, episodes (the stored messages, "
                               "each found also by the memories learnt from it) or all (both in one list)")


@router.post("/search", tags=["search"])
def search(body: SearchRequest, tm: Tm, user: User) -> list[SearchHit]:
    """Best matches first; each hit's ``scores`` tells why it ranked there. A hit is a memory (``kind`` "memory")
    or a message (``kind`` "episode", with who said it, when, and what was learnt from it); with episodes in scope
    a memory lists the messages it was learnt from under ``sources``."""
    return tm.search(body.query, user_id=user, limit=body.limit, types=body.types, statuses=body.statuses,
                     mode=body.mode, scope=body.scope)


# --- the pipeline, through the queue -------------------------------------------------------------------------------
class ChatMessageIn(BaseModel):
    role: str = Field(max_length=16)
    content: str = Field(max_length=32_000)
    id: str | None = Field(default=None, max_length=128)
    created_at: datetime | None = None


WAITS_PER_USER = 8


class Waits:
    """How many ``wait=true`` requests each user has open in this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def enter(self, user: str) -> None:
        with self._lock:
            if self._open.get(user, 0) >= self.limit:
                raise ApiError(429, "too_many_waits", f"This user already waits on {self.limit} jobs; wait for "
                               "one to finish, or queue without wait=true and follow the job.",
                               headers={"Retry-After": "1"})
            self._open[user] = self._open.get(user, 0) + 1

    def leave(self, user: str) -> None:
        with self._lock:
            left = self._open.get(user, 1) - 1
            if left:
                self._open[user] = left
            else:
                self._open.pop(user, None)


WAITS = Waits(WAITS_PER_USER)


class ProcessRequest(BaseModel):
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=200)
    session_id: str | None = Field(default=None, max_length=64)


class JobOut(BaseModel):
    job: Job
    result: PipelineResult | None = None


@router.post("/process", status_code=status.HTTP_202_ACCEPTED, tags=["pipeline"],
             responses={200: {"model": JobOut, "description": "With wait=true: the finished job and its trace"},
                        429: _error("Too many waits of this user at once; see Retry-After")})
async def process(body: ProcessRequest, tm: Tm, user: User, response: Response,
                  wait: Annotated[bool, Query(description="answer when the job is finished (200)")] = False,
                  timeout: Annotated[float, Query(gt=0, le=600)] = 120) -> JobOut:
    """Queue an exchange for extraction and consolidation: 202 with the job at once, or with ``wait=true`` 200 with
    the finished job and its pipeline trace (202 with the job as it is, if it did not finish within ``timeout``).

    A wait holds no server thread (it sleeps on the event loop until the job finishes), and one user may wait on at most
    :data:`WAITS_PER_USER` jobs at once: more is 429, so no client can stall the others."""
    messages = [m.model_dump() for m in body.messages]
    if wait:
        WAITS.enter(user)
    try:
        job = await run_in_threadpool(tm.jobs.enqueue, messages, user_id=user, session_id=body.session_id)
        if not wait:
            return JobOut(job=job)
        job = await tm.jobs.wait_async(job.id, user_id=user, timeout=timeout)
    finally:
        if wait:
            WAITS.leave(user)
    if job.status not in FINISHED:
        return JobOut(job=job)
    response.status_code = status.HTTP_200_OK
    return JobOut(job=job, result=await run_in_threadpool(tm.jobs.result, job))


class ReflectRequest(BaseModel):
    since: datetime | None = Field(default=None, description="only memories changed at or after this time")
    max_groups: int | None = Field(default=None, ge=1, le=10_000, description="at most this many LLM calls")


@router.post("/reflect", status_code=status.HTTP_202_ACCEPTED, tags=["pipeline"])
def reflect(body: ReflectRequest, tm: Tm, user: User) -> JobOut:
    """Queue a reflection pass over the caller's memories: groups of close memories are reviewed for ones a later
    memory replaced and for duplicates, each group applied as a run of kind ``reflection``. Follow the job."""
    return JobOut(job=tm.jobs.enqueue_reflection(user_id=user, since=body.since, max_groups=body.max_groups))


@router.get("/jobs", tags=["pipeline"])
def list_jobs(tm: Tm, user: User, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[Job]:
    return tm.jobs.list(user_id=user, limit=limit)


@router.get("/jobs/{job_id}", tags=["pipeline"])
def get_job(job_id: str, tm: Tm, user: User) -> JobOut:
    """A job's status; once it has run, its pipeline trace (facts, candidates, decisions, changes)."""
    job = tm.jobs.get(job_id, user_id=user)
    return JobOut(job=job, result=tm.jobs.result(job))


# --- sessions and chat ---------------------------------------------------------------------------------------------
class SessionIn(BaseModel):
    title: str = Field(default="New chat", max_length=200)


@router.post("/sessions", status_code=status.HTTP_201_CREATED, tags=["sessions"])
def create_session(body: SessionIn, tm: Tm, user: User) -> ChatSession:
    return tm.sessions.create(user_id=user, title=body.title)


@router.get("/sessions", tags=["sessions"])
def list_sessions(tm: Tm, user: User) -> list[ChatSession]:
    return tm.sessions.list(user_id=user)


@router.patch("/sessions/{session_id}", tags=["sessions"])
def rename_session(session_id: str, body: SessionIn, tm: Tm, user: User) -> ChatSession:
    return tm.sessions.rename(session_id, user_id=user, title=body.title)


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["sessions"])
def delete_session(session_id: str, tm: Tm, user: User) -> Response:
    tm.sessions.delete(session_id, user_id=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/sessions/{session_id}/messages", tags=["sessions"])
def session_messages(session_id: str, tm: Tm, user: User) -> list[Message]:
    return tm.sessions.messages(session_id, user_id=user)


class ChatRequest(BaseModel):
    message: str = Field(max_length=32_000)
    session_id: str | None = Field(default=None, max_length=64)


CHATS_PER_USER = 4
CHAT_LEARN_SECONDS = 600


@router.post("/chat", response_model=None, tags=["chat"],
             responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"},
                        429: _error("Too many chat turns of this user unfinished at once; see Retry-After")})
def chat(body: ChatRequest, tm: Tm, user: User, request: Request) -> StreamingResponse:
    """Server-sent events: ``session`` (its id), ``token`` per piece of the reply, ``reply`` at the last token (the
    saved message and the memories it was given), ``title`` when a new session was named, then ``trace`` when the
    exchange has been learnt from (or ``error``). The message is saved before anything streams; learning runs on
    the job queue, after the reply.

    A stream holds no server thread while it waits for the model (it sleeps on the event loop until the exchange
    moves on), and one user may
    have at most :data:`CHATS_PER_USER` turns unfinished (replying or learning) at once: more is 429, so no client
    can stall the others."""
    if tm.chat.unfinished(user_id=user) >= CHATS_PER_USER:
        raise ApiError(429, "too_many_chats", f"This user already has {CHATS_PER_USER} chat turns being answered or "
                       "learnt from; wait for one to finish.", headers={"Retry-After": "1"})
    exchange = tm.chat.submit(body.message, user_id=user, session_id=body.session_id)  # errors here are plain 4xx
    count_calls = request.app.state.metrics.llm_calls.labels("chat").inc
    return StreamingResponse(_chat_events(exchange, count_calls), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _event(kind: str, data: Any) -> bytes:
    return format_sse_event(event=kind, data_str=data if isinstance(data, str) else json.dumps(data))


async def _chat_events(exchange: ChatExchange, count_calls: Callable[[float], None]) -> AsyncIterator[bytes]:
    assert exchange.user_message is not None
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()  # set from the exchange's thread at each token and change of state
    stop = exchange.listen(lambda: loop.call_soon_threadsafe(changed.set))
    try:
        yield _event("session", {"session_id": exchange.session_id, "message_id": exchange.user_message.id})
        seen, finished = 0, False
        while not finished:
            changed.clear()  # before reading: a token that comes after the read sets it again
            new, finished = exchange.tokens_since(seen)
            seen += len(new)
            for token in new:
                yield _event("token", json.dumps(token))
            if not new and not finished:
                await changed.wait()
        if exchange.assistant_message is not None:  # at the last token: learning from the exchange comes after
            yield _event("reply", {"message_id": exchange.assistant_message.id, "content": exchange.reply,
                                   "given": [json.loads(h.model_dump_json()) for h in exchange.given]})
        deadline = time.monotonic() + CHAT_LEARN_SECONDS
        while True:
            changed.clear()
            left = deadline - time.monotonic()
            if exchange.finished or left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)
        if exchange.title:
            yield _event("title", {"session_id": exchange.session_id, "title": exchange.title})
        if exchange.pipeline is not None:
            yield _event("trace", exchange.pipeline.model_dump_json())
        if exchange.error:
            yield _event("error", {"code": "chat", "message": exchange.error})
    finally:
        stop()
        count_calls(exchange.usage.calls)  # the reply and the title; learning is counted with its pipeline run


# --- users (admin) -------------------------------------------------------------------------------------------------
class UserIn(BaseModel):
    user_id: str = Field(max_length=128)


@router.get("/users", tags=["users"])
def list_users(tm: Tm, who: Admin) -> list[UserStats]:
    return tm.users.list()


@router.post("/users", status_code=status.HTTP_201_CREATED, tags=["users"])
def create_user(body: UserIn, tm: Tm, who: Admin) -> UserStats:
    tm.users.ensure(user_id=body.user_id)
    return next(u for u in tm.users.list() if u.id == body.user_id)


@router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["users"])
def delete_user(user_id: str, tm: Tm, who: Admin) -> Response:
    if user_id not in {u.id for u in tm.users.list()}:
        raise NotFoundError(f"No user '{user_id}'.")
    tm.users.delete(user_id=user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
