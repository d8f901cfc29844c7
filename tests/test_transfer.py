"""Export with history and import restore memories losslessly across backends (SQLite ↔ MariaDB)."""

from __future__ import annotations

from pathlib import Path

import pytest
from databases import make_store

from timemory import TiMem
from timemory.core import memories_to_jsonl, read_export
from timemory.lab import seed_demo


def everything(tm: TiMem) -> tuple[list[dict], list[dict]]:  # type: ignore[type-arg]
    users = [u.id for u in tm.users.list()]
    memories = sorted((m.model_dump() for u in users for m in tm.list_memories(user_id=u, limit=10_000)),
                      key=lambda m: m["id"])
    events = sorted((e.model_dump(exclude={"id"}) for u in users for e in tm.events(user_id=u)),
                    key=lambda e: (e["memory_id"], e["created_at"], e["event"]))
    return memories, events


@pytest.mark.parametrize(("source", "target"), [("sqlite", "mariadb"), ("mariadb", "sqlite")])
def test_round_trip_keeps_rows_events_and_links(source: str, target: str, embedder, tmp_path: Path) -> None:
    (tmp_path / source).mkdir()
    (tmp_path / target).mkdir()
    src = TiMem(make_store(source, embedder, tmp_path / source), embedder)
    seed_demo(src)
    users = [u.id for u in src.users.list()]
    path = tmp_path / "export.jsonl"
    path.write_text("".join(memories_to_jsonl(src.list_memories(user_id=u, limit=10_000),
                                              src.histories([m.id for m in src.list_memories(user_id=u,
                                                                                             limit=10_000)], user_id=u))
                            for u in users))
    memories, events = everything(src)
    assert any(m["superseded_by"] for m in memories) and any(e["event"] == "OUTDATE" for e in events)

    dst = TiMem(make_store(target, embedder, tmp_path / target), embedder)
    records = read_export(path)
    by_user: dict[str, list] = {}  # type: ignore[type-arg]
    for memory, history in records:
        assert history is not None
        by_user.setdefault(memory.user_id, []).append((memory, history))
    for user, items in by_user.items():
        assert dst.import_memories(items, user_id=user) == len(items)
        assert dst.import_memories(items, user_id=user) == 0  # already there: left alone
    assert everything(dst) == (memories, events)
    some = next(m for m in dst.list_memories(user_id=users[0]) if m.status == "active")
    assert dst.search(some.content, user_id=users[0], limit=1)[0].memory.id == some.id  # vectors written and searchable
    src.close()
    dst.close()
