"""Time travel over the event history: a user's memories as they were at a moment, and what one run changed.

Every change to a memory writes an event with the full new state (content, type, status) and its time, so the
state at any moment is the replay of the events up to it, in the order they happened. Memories deleted later are
present before their DELETE; memories created later are absent.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from timemory.schemas import Memory, MemoryChange, MemoryEvent


def apply_events(user_id: str, events: Iterable[MemoryEvent]) -> dict[str, Memory]:
    """The memories left by applying ``events`` in order, by id (plain dicts while replaying: one model each at the
    end, not one copy per event)."""
    state: dict[str, dict[str, Any]] = {}
    for e in events:
        current = state.get(e.memory_id)
        if e.event == "DELETE":
            state.pop(e.memory_id, None)
            continue
        if current is None:
            if e.event != "ADD" and e.new_content is None:
                continue  # a change to a memory whose ADD is not in this history (should not happen)
            status = e.new_status or "active"
            state[e.memory_id] = {
                "id": e.memory_id, "user_id": user_id, "content": e.new_content or e.old_content or "",
                "type": e.new_type or e.old_type or "personal", "status": status, "created_at": e.created_at,
                "updated_at": e.created_at, "source_message_ids": list(e.source_message_ids),
                "superseded_by": None, "outdated_at": e.created_at if status == "outdated" else None,
            }
            if e.event == "ADD":
                continue
            current = state[e.memory_id]
        current["updated_at"] = e.created_at
        if e.new_content is not None:
            current["content"] = e.new_content
        if e.new_type is not None:
            current["type"] = e.new_type
        if e.new_status is not None and e.new_status != current["status"]:
            current["status"] = e.new_status
            current["outdated_at"] = e.created_at if e.new_status == "outdated" else None
            if e.new_status == "active":
                current["superseded_by"] = None
        if e.event == "OUTDATE" and e.related_memory_id:
            current["superseded_by"] = e.related_memory_id
        if e.source_message_ids:
            current["source_message_ids"] = list(dict.fromkeys([*current["source_message_ids"],
                                                                *e.source_message_ids]))
    return {mid: Memory.model_construct(**fields) for mid, fields in state.items()}


def state_at(user_id: str, events: Iterable[MemoryEvent], at: datetime) -> list[Memory]:
    """The memories as they were at ``at`` (events after it ignored), oldest first."""
    kept = [e for e in events if e.created_at <= at]
    return sorted(apply_events(user_id, kept).values(), key=lambda m: (m.created_at, m.id))


def diff_run(user_id: str, history: list[MemoryEvent], run_id: str) -> list[MemoryChange]:
    """Before/after of each memory a run touched. ``history`` holds every event of those memories, in order."""
    positions = [i for i, e in enumerate(history) if e.run_id == run_id]
    if not positions:
        return []
    first, last = positions[0], positions[-1]
    before = apply_events(user_id, history[:first])
    after = apply_events(user_id, history[: last + 1])
    touched: dict[str, list[str]] = {}
    for e in history[first : last + 1]:
        if e.run_id == run_id:
            touched.setdefault(e.memory_id, []).append(e.event)
    return [MemoryChange(memory_id=mid, events=events, before=before.get(mid), after=after.get(mid))  # type: ignore[arg-type]
            for mid, events in touched.items()]


def counts_over_time(events: list[MemoryEvent], points: int = 200) -> list[dict[str, object]]:
    """Active and outdated memories per type at up to ``points`` moments spread over the events' span (one pass,
    the tally kept up to date event by event)."""
    if not events:
        return []
    first, last = events[0].created_at, events[-1].created_at
    span = (last - first) / max(points - 1, 1)
    moments = [first + span * i for i in range(points - 1)] if span.total_seconds() > 0 else []
    moments.append(last)  # exactly the last event's time: the span's division rounds to microseconds
    state: dict[str, tuple[str, str]] = {}  # memory id -> (type, status)
    tally: dict[tuple[str, str], int] = {}
    rows: list[dict[str, object]] = []
    i = 0
    for moment in moments:
        while i < len(events) and events[i].created_at <= moment:
            e = events[i]
            i += 1
            old = state.pop(e.memory_id, None)
            if old is not None:
                tally[old] -= 1
            if e.event == "DELETE":
                continue
            old_type, old_status = old or (e.old_type or "personal", "active")
            new = state[e.memory_id] = (e.new_type or old_type, e.new_status or old_status)
            tally[new] = tally.get(new, 0) + 1
        rows += [{"at": moment, "type": t, "status": s, "memories": n} for (t, s), n in sorted(tally.items()) if n]
    return rows


class EventLog:
    """One user's whole event history in memory, indexed so that the state at any moment, the counts over time and
    any run's diff come without another database read (the Timeline page keeps one per data version)."""

    def __init__(self, user_id: str, events: list[MemoryEvent]) -> None:
        self.user_id, self.events = user_id, events  # in the order they happened, as Store.events returns them
        self._times = [e.created_at for e in events]
        self._by_memory: dict[str, list[int]] = {}
        self._by_run: dict[str, list[str]] = {}
        for i, e in enumerate(events):
            self._by_memory.setdefault(e.memory_id, []).append(i)
            if e.run_id:
                touched = self._by_run.setdefault(e.run_id, [])
                if e.memory_id not in touched:
                    touched.append(e.memory_id)

    def __len__(self) -> int:
        return len(self.events)

    def state_at(self, at: datetime) -> list[Memory]:
        kept = self.events[: bisect_right(self._times, at)]
        return sorted(apply_events(self.user_id, kept).values(), key=lambda m: (m.created_at, m.id))

    def counts_over_time(self, points: int = 200) -> list[dict[str, object]]:
        return counts_over_time(self.events, points)

    def diff(self, run_id: str) -> list[MemoryChange]:
        positions = sorted(i for mid in self._by_run.get(run_id, []) for i in self._by_memory[mid])
        return diff_run(self.user_id, [self.events[i] for i in positions], run_id)
