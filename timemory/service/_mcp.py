"""TiMemory as an MCP server (stdio), for desktop assistants and IDE agents: tools to add, search, list, update and
delete one user's memories and to learn from an exchange. The user is fixed by configuration (``--user`` or
``TIMEMORY_MCP_USER``), never by the calling model."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from timemory._facade import TiMem
from timemory.core._engine import DEFAULT_SEARCH_SCOPE
from timemory.errors import TiMemoryError
from timemory.schemas import Episode, Memory, MemoryEdit, SearchHit, SearchScope

Type = Literal["personal", "preference", "activity", "plan", "health", "professional"]
Status = Literal["active", "outdated"]
Scope = SearchScope


F = TypeVar("F", bound=Callable[..., Any])


def _explained(fn: F) -> F:
    """Engine errors reach the model as readable tool errors (what was wrong and its code), not a bare failure."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TiMemoryError as exc:
            raise ToolError(f"{exc} (code: {exc.code})") from exc
    return wrapper  # type: ignore[return-value]


def _brief(m: Memory) -> dict[str, Any]:
    return {"id": m.id, "content": m.content, "type": m.type, "status": m.status,
            "updated_at": m.updated_at.isoformat()}


def _episode(e: Episode) -> dict[str, Any]:
    return {"message_id": e.message_id, "session_id": e.session_id, "speaker": e.speaker, "content": e.content,
            "said_at": e.created_at.isoformat(), "learnt": [m.content for m in e.learnt]}


def _hit_brief(hit: SearchHit) -> dict[str, Any]:
    if hit.memory is not None:
        brief = {"kind": "memory", **_brief(hit.memory)}
        return {**brief, "learnt_from": [_episode(e) for e in hit.sources]} if hit.sources else brief
    assert hit.episode is not None
    return {"kind": "episode", **_episode(hit.episode)}


def build_server(tm: TiMem, user_id: str) -> MCPServer:
    tm.users.use(user_id=user_id)  # an erased user is refused, not brought back
    server = MCPServer("TiMemory", instructions=(
        "Long-term memory about the user you are talking with. Search it before answering questions that depend on "
        "who the user is or what they said before; add a memory when they tell you something lasting about "
        "themselves; after a meaningful exchange, call process_exchange to let TiMemory extract and consolidate "
        "facts (it also marks contradicted memories outdated)."))

    @server.tool()
    @_explained
    def search_memories(query: str, limit: int = 5, include_outdated: bool = False,
                        scope: Scope = DEFAULT_SEARCH_SCOPE) -> list[dict[str, Any]]:
        """What best matches the query by meaning and shared words, best first, each with its score and why it
        ranked there: the user's memories (scope "memories"), the messages of their conversations ("episodes":
        each with who said it, when, and what was learnt from it) or both ("all")."""
        statuses = ["active", "outdated"] if include_outdated else ["active"]
        return [{**_hit_brief(h), "score": round(h.score, 4), "why": h.scores.explain() if h.scores else ""}
                for h in tm.search(query, user_id=user_id, limit=max(1, min(limit, 50)), statuses=statuses,
                                   scope=scope)]

    @server.tool()
    @_explained
    def list_memories(type: Type | None = None, status: Status | None = None, text: str | None = None,
                      limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """The user's memories, newest first, optionally of one type or status or containing some text."""
        filters: dict[str, Any] = {"types": [type] if type else None, "statuses": [status] if status else None,
                                   "text": text}
        items = tm.list_memories(user_id=user_id, limit=max(1, min(limit, 200)), offset=max(0, offset), **filters)
        return {"total": tm.count_memories(user_id=user_id, **filters), "items": [_brief(m) for m in items]}

    @server.tool()
    @_explained
    def add_memory(content: str, type: Type = "preference") -> dict[str, Any]:
        """Store one fact about the user as given (short, self-contained, third person: "The user ...")."""
        return _brief(tm.add(content, user_id=user_id, type=type))

    @server.tool()
    @_explained
    def update_memory(memory_id: str, content: str | None = None, type: Type | None = None,
                      status: Status | None = None) -> dict[str, Any]:
        """Change a memory's text, type or status (outdated = no longer true); kept in its history."""
        tm.edit_memories([MemoryEdit(memory_id=memory_id, content=content, type=type, status=status)],
                         user_id=user_id, reason="edited through MCP")
        return _brief(tm.get_memory(memory_id, user_id=user_id))

    @server.tool()
    @_explained
    def delete_memory(memory_id: str) -> str:
        """Forget a memory (its history keeps that it was deleted)."""
        tm.delete_memory(memory_id, user_id=user_id)
        return f"Deleted memory {memory_id}."

    @server.tool()
    @_explained
    def process_exchange(user_message: str, assistant_message: str | None = None,
                         wait: bool = False) -> dict[str, Any]:
        """Learn from one exchange: facts are extracted and consolidated with what is already known (added,
        updated, or older ones marked outdated). Queued; with wait=true the answer lists what changed."""
        messages = [{"role": "user", "content": user_message}]
        if assistant_message:
            messages.append({"role": "assistant", "content": assistant_message})
        job = tm.jobs.enqueue(messages, user_id=user_id)
        worker.wake()
        if not wait:
            return {"job_id": job.id, "status": job.status}
        job = tm.jobs.wait(job.id, user_id=user_id, timeout=300)
        result = tm.jobs.result(job)
        return {"job_id": job.id, "status": job.status, "error": job.error,
                "facts": [f.content for f in result.facts] if result else [],
                "changes": [{"event": c.event, "memory_id": c.memory_id, "content": c.content}
                            for c in (result.changes if result else [])]}

    worker = tm.worker().start()  # learns from queued exchanges while the server runs
    return server


def run(user_id: str) -> None:
    server = build_server(TiMem.from_settings(), user_id)
    try:
        server.run("stdio")
    except BaseExceptionGroup as group:
        # A stop signal interrupts whichever of the server's tasks is running; its task group then wraps the
        # interrupt with whatever else its stop ended. A stop is reported as Ctrl-C is; a group with no interrupt in
        # it is raised as it came.
        if group.subgroup(KeyboardInterrupt) is not None:
            raise KeyboardInterrupt from None
        raise
