"""The memory operations people make by hand (add, edit, outdate, delete, import) and the time-travel reads, each in
one transaction, checked before anything is written."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from timemory._time import as_utc
from timemory._validation import check_status, check_type, check_user_id
from timemory.core._engine import Engine
from timemory.core._timeline import diff_run, state_at
from timemory.errors import InvalidInputError, NotFoundError
from timemory.schemas import Memory, MemoryEdit, MemoryEvent, RunDiff, subject_key
from timemory.store import AddMemory, ChangeMemory, DeleteMemory


class MemoryBook:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._memories = engine.store.memories

    def add(self, content: str, *, user_id: str, type: str = "preference", status: str = "active",
            source_message_ids: Sequence[str] = (), session_id: str | None = None,
            created_at: datetime | None = None, reason: str | None = None, subject: str | None = None) -> Memory:
        """Store one memory as given (no LLM); ``subject`` is its subject key, if it has one."""
        check_user_id(user_id)
        content = self._engine.check_content(content)
        op = AddMemory(
            content=content, type=check_type(type), status=check_status(status),
            embedding=self._engine.embed_checked([content])[0], actor="user", reason=reason or "added by hand",
            source_message_ids=list(source_message_ids), source_session_id=session_id, created_at=created_at,
            subject=subject_key(subject),
        )
        changes = self._memories.apply(user_id, [op])
        return self._memories.get(user_id, changes[0].memory_id)

    def edit(self, edits: Sequence[MemoryEdit], *, user_id: str, reason: str | None = None) -> list[Memory]:
        """Apply several hand edits in one transaction: all of them or, on any invalid edit or conflict, none.

        Empty content is refused (an edit cannot blank a memory); an edit whose ``seen_updated_at`` no longer matches
        raises :class:`ConflictError`. Changed text is re-embedded in one batched call.
        """
        check_user_id(user_id)
        if not edits:
            return []
        ids = [e.memory_id for e in edits]
        if len(set(ids)) != len(ids):
            raise InvalidInputError("Each memory can be edited once per save.")
        current = self._memories.get_many(user_id, ids)
        for e in edits:
            if e.memory_id not in current:
                raise NotFoundError(f"No memory '{e.memory_id}' for user '{user_id}'.")
        contents: dict[str, str] = {}
        for e in edits:
            if e.content is not None:
                label = f"The new text for '{current[e.memory_id].content[:60]}'"
                if isinstance(e.content, str) and not e.content.strip():
                    raise InvalidInputError(f"{label} is empty: a memory cannot be blank (delete it instead). "
                                          "Nothing was saved.")
                text = self._engine.check_content(e.content, label)
                if text != current[e.memory_id].content:
                    contents[e.memory_id] = text
        vectors = (dict(zip(contents, self._engine.embed_checked(list(contents.values())), strict=True))
                   if contents else {})
        ops = [ChangeMemory(
            memory_id=e.memory_id, content=contents.get(e.memory_id), embedding=vectors.get(e.memory_id),
            type=check_type(e.type) if e.type is not None else None,
            status=check_status(e.status) if e.status is not None else None,
            event="EDIT", actor="user", reason=reason or "edited by hand", expected_updated_at=e.seen_updated_at,
        ) for e in edits]
        self._memories.apply(user_id, ops)
        found = self._memories.get_many(user_id, ids)
        return [found[i] for i in ids]

    def set_status(self, memory_ids: Sequence[str], *, user_id: str, status: str) -> list[Memory]:
        """Outdate or reactivate several memories at once (one transaction)."""
        check_user_id(user_id)
        status = check_status(status)
        ops = [ChangeMemory(memory_id=m, status=status, actor="user", reason=f"set to {status} by hand")
               for m in dict.fromkeys(memory_ids)]
        self._memories.apply(user_id, ops)
        return list(self._memories.get_many(user_id, list(memory_ids)).values())

    def delete(self, memory_ids: Sequence[str], *, user_id: str) -> None:
        """Delete in one transaction; each memory's events are kept."""
        check_user_id(user_id)
        ops = [DeleteMemory(memory_id=m, reason="deleted by hand") for m in dict.fromkeys(memory_ids)]
        self._memories.apply(user_id, ops)

    def import_records(self, records: Sequence[tuple[Memory, list[MemoryEvent] | None]], *, user_id: str) -> int:
        """Put exported memories back: those with their history exactly as they were (ids, times, links, events),
        the others added with their ids and times. Memories the user already has are left alone; returns how many
        were imported."""
        check_user_id(user_id)
        existing = set(self._memories.get_many(user_id, [m.id for m, _ in records]))
        todo = [(m, e) for m, e in records if m.id not in existing]
        if not todo:
            return 0
        vectors = self._engine.embed_checked([self._engine.check_content(m.content) for m, _ in todo])
        restored = [(m, v, e) for (m, e), v in zip(todo, vectors, strict=True) if e is not None]
        ops = [AddMemory(content=m.content, type=check_type(m.type), status=check_status(m.status), embedding=v,
                         actor="user", reason="imported", source_message_ids=m.source_message_ids,
                         source_session_id=m.source_session_id, created_at=m.created_at, updated_at=m.updated_at,
                         memory_id=m.id, superseded_by=m.superseded_by, subject=m.subject,
                         provenance=m.provenance)
               for (m, e), v in zip(todo, vectors, strict=True) if e is None]
        if restored:
            self._memories.restore(user_id, restored)
        if ops:
            self._memories.apply(user_id, ops)
        return len(todo)

    # ------------------------------------------------------------------ time travel
    def state_at(self, at: datetime, *, user_id: str) -> list[Memory]:
        """The user's memories exactly as they were at ``at``."""
        check_user_id(user_id)
        if not isinstance(at, datetime):
            raise InvalidInputError("at must be a datetime.")
        at = as_utc(at)
        return state_at(user_id, self._memories.events(user_id, until=at), at)

    def run_diff(self, run_id: str, *, user_id: str) -> RunDiff:
        """What one pipeline run changed: each memory it touched, before and after."""
        check_user_id(user_id)
        run = self._engine.store.runs.get(user_id, run_id)
        touched = {e.memory_id for e in self._memories.run_events(user_id, run_id)}
        history = self._memories.events(user_id, memory_ids=sorted(touched)) if touched else []
        return RunDiff(run_id=run_id, user_id=user_id, created_at=run.created_at, status=run.status,
                       changes=diff_run(user_id, history, run_id))

    def supersession_chain(self, memory_id: str, *, user_id: str) -> list[Memory]:
        """The memory, then what superseded it, and so on (stops on cycles and missing links)."""
        chain: list[Memory] = []
        seen: set[str] = set()
        current: str | None = memory_id
        while current and current not in seen:
            seen.add(current)
            try:
                mem = self._memories.get(user_id, current)
            except NotFoundError:
                break
            chain.append(mem)
            current = mem.superseded_by
        return chain
