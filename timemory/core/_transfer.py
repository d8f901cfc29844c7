"""Reading conversations and memory exports from files (for the CLI and the dashboard)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from timemory.errors import InvalidInputError
from timemory.schemas import Memory, MemoryEvent


def load_conversations(path: Path) -> list[dict[str, Any]]:
    """A list of messages, or a list of sessions ({"date", "messages", optional "title"}), as sessions."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"Cannot read {path}: {exc}") from exc
    if not isinstance(data, list) or not data:
        raise InvalidInputError(f"{path}: expected a non-empty JSON list of messages or of sessions.")
    if all(isinstance(x, dict) and "messages" in x for x in data):
        sessions = data
    elif all(isinstance(x, dict) and "role" in x for x in data):
        sessions = [{"messages": data}]
    else:
        raise InvalidInputError(f"{path}: each item must be a message (role, content) or a session (date, messages).")
    out = []
    for n, sess in enumerate(sessions):
        date = sess.get("date")
        when = None
        if date is not None:
            try:
                when = datetime.fromisoformat(str(date))
            except ValueError as exc:
                raise InvalidInputError(f"{path}: session {n} has date {date!r}, not an ISO date.") from exc
        messages = []
        for m in sess["messages"]:
            if not isinstance(m, dict):
                raise InvalidInputError(f"{path}: session {n} has a message that is not an object.")
            msg = dict(m)
            if msg.get("created_at") is None and when is not None:
                msg["created_at"] = when
            messages.append(msg)
        out.append({"date": when, "title": sess.get("title"), "messages": messages})
    return out


def exchanges(messages: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Split a conversation into exchanges: each user turn with the assistant replies that follow it."""
    current: list[dict[str, Any]] = []
    for m in messages:
        if m.get("role") == "user" and any(x.get("role") == "assistant" for x in current):
            yield current
            current = []
        current.append(m)
    if current:
        yield current


EXPORT_FIELDS = [
    "id", "user_id", "content", "type", "status", "created_at", "updated_at", "source_message_ids",
    "source_session_id", "superseded_by", "outdated_at", "subject", "provenance",
]


def _records(memories: list[Memory], histories: dict[str, list[MemoryEvent]] | None) -> list[dict[str, Any]]:
    """Memories as JSON-ready dicts; with ``histories``, each carries its events under "history"."""
    records = []
    for m in memories:
        record = m.model_dump(mode="json")
        if histories is not None:
            record["history"] = [e.model_dump(mode="json") for e in histories.get(m.id, [])]
        records.append(record)
    return records


def memories_to_json(memories: list[Memory], histories: dict[str, list[MemoryEvent]] | None = None) -> str:
    """A JSON list of memories; with ``histories``, each memory carries its events under "history"."""
    return json.dumps(_records(memories, histories), ensure_ascii=False, indent=2)


def memories_to_csv(memories: list[Memory]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    for m in memories:
        row = m.model_dump(mode="json")
        row["source_message_ids"] = json.dumps(row["source_message_ids"])
        writer.writerow({k: row.get(k) for k in EXPORT_FIELDS})
    return buf.getvalue()


def memories_to_jsonl(memories: list[Memory], histories: dict[str, list[MemoryEvent]] | None = None) -> str:
    """One memory per line; with ``histories``, each with its events under "history" (``import`` restores them)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _records(memories, histories))


def read_export(path: Path) -> list[tuple[Memory, list[MemoryEvent] | None]]:
    """Memories from an export (JSON, JSON lines or CSV, by extension), each with its history when it has one."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
        if Path(path).suffix.lower() == ".jsonl":
            records = [json.loads(line) for line in raw.splitlines() if line.strip()]
        elif Path(path).suffix.lower() == ".csv":
            return [(m, None) for m in read_memories(path)]
        else:
            records = json.loads(raw)
        out = []
        for r in records:
            history = r.pop("history", None) if isinstance(r, dict) else None
            events = [MemoryEvent.model_validate(e) for e in history] if history is not None else None
            out.append((Memory.model_validate(r), events))
        return out
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError, AttributeError) as exc:
        raise InvalidInputError(f"Cannot import {path}: {str(exc)[:300]}") from exc


def read_memories(path: Path) -> list[Memory]:
    """Memories from an export (JSON or CSV, chosen by the file's extension)."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
        if Path(path).suffix.lower() == ".csv":
            rows: list[dict[str, Any]] = []
            for r in csv.DictReader(io.StringIO(raw)):
                row: dict[str, Any] = {k: (v if v != "" else None) for k, v in r.items()}
                row["source_message_ids"] = json.loads(row.get("source_message_ids") or "[]")
                rows.append(row)
        else:
            rows = json.loads(raw)
        for row in rows:
            if isinstance(row, dict):
                row.pop("history", None)  # an export with history imports as memories
        return [Memory.model_validate(r) for r in rows]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise InvalidInputError(f"Cannot import {path}: {str(exc)[:300]}") from exc
