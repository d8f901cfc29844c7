"""The memory browser's editable grid, without Streamlit: the rows it shows, its key, and what a person changed in it
turned into :class:`MemoryEdit` s (and the ticked rows into ids).

Rows are indexed by memory id, and the grid's key names exactly the rows (and versions) it shows: when the rows
change — a save re-sorts them, a filter or another writer changes them — the grid starts clean, so a pending edit can
never be applied to whatever memory moved into its position.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pandas as pd

from timemory import Memory, MemoryEdit

EDITABLE = ("content", "type", "status")
COLUMNS = ["select", "content", "type", "status", "updated", "superseded by", "id"]
SHOWN_CHARS = 60  # of each text in the warning about edits that were not saved


def replaced_by(memory: Memory, replacements: dict[str, Memory]) -> str:
    """What replaced an outdated memory, as the grid shows it: its text and status, "(deleted)" when it is gone,
    nothing when the memory was not replaced."""
    if not memory.superseded_by:
        return ""
    new = replacements.get(memory.superseded_by)
    return f"{new.content} ({new.status})" if new else "(deleted)"


def grid_frame(rows: list[Memory], replacements: dict[str, Memory]) -> pd.DataFrame:
    """The grid's rows, unticked, indexed by memory id."""
    return pd.DataFrame([{
        "select": False, "content": m.content, "type": m.type, "status": m.status,
        "updated": m.updated_at.strftime("%Y-%m-%d %H:%M"), "superseded by": replaced_by(m, replacements), "id": m.id,
    } for m in rows], columns=COLUMNS, index=pd.Index([m.id for m in rows], dtype="object"))


def grid_key(rows: list[Memory]) -> str:
    """A widget key that changes whenever the shown rows, their order or any of their versions change."""
    return "editor-" + hashlib.sha1(
        "|".join(f"{m.id}@{m.updated_at.isoformat()}" for m in rows).encode()).hexdigest()[:16]


def grid_edits(rows: list[Memory], edited: pd.DataFrame) -> list[MemoryEdit]:
    """One edit per row whose content, type or status differs from the memory shown, with only the fields that
    differ, and the ``updated_at`` the person saw (so an edit of a memory that changed meanwhile is refused). A
    cleared content cell (the grid sends None) is an edit to empty text, which the core refuses with its reason."""
    shown = {m.id: m for m in rows}
    edits = []
    for memory_id, after in edited.iterrows():
        memory = shown[str(memory_id)]
        diff = {k: after[k] for k in EDITABLE if after[k] != getattr(memory, k)}
        if not diff:
            continue
        if "content" in diff and not isinstance(diff["content"], str):
            diff["content"] = ""
        edits.append(MemoryEdit(memory_id=memory.id, seen_updated_at=memory.updated_at, **diff))
    return edits


def ticked(edited: pd.DataFrame) -> list[str]:
    """The ids of the rows whose checkbox is ticked, in grid order."""
    return [str(i) for i, row in edited.iterrows() if row["select"]]


def unsaved_texts(rows: list[Memory], edits: Iterable[MemoryEdit]) -> list[tuple[str, str]]:
    """The text edits as (before, after), each cut to its first characters: what to tell the person when the list
    changed before they saved them."""
    shown = {m.id: m for m in rows}
    return [(shown[e.memory_id].content[:SHOWN_CHARS], (e.content or "")[:SHOWN_CHARS])
            for e in edits if e.content is not None]


def still_replaced(ids: Iterable[str], rows: list[Memory], replacements: dict[str, Memory]) -> list[tuple[str, str]]:
    """Of the shown memories among ``ids``, those replaced by a memory that is still active, as (text, replacement's
    text): reactivating them leaves both active."""
    shown = {m.id: m for m in rows}
    out = []
    for memory_id in ids:
        memory = shown.get(memory_id)
        new = replacements.get(memory.superseded_by or "") if memory is not None else None
        if memory is not None and new is not None and new.status == "active":
            out.append((memory.content, new.content))
    return out
