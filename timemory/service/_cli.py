"""The ``timemory`` command (also ``python -m timemory``): add, ingest, search, list, export, import, seed-demo and
reembed here; the lab's replay, evaluate and reflect in :mod:`timemory.service._lab_cli`; serve, worker, keys, users
and mcp in :mod:`timemory.service._ops_cli`; dashboard in :mod:`timemory.service._dashboard_cli`."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from timemory._facade import TiMem
from timemory._version import __version__
from timemory.core._engine import DEFAULT_SEARCH_MODE, DEFAULT_SEARCH_SCOPE
from timemory.core._transfer import (
    exchanges,
    load_conversations,
    memories_to_csv,
    memories_to_json,
    memories_to_jsonl,
    read_export,
)
from timemory.errors import InvalidInputError, TiMemoryError
from timemory.lab._demo import seed_demo
from timemory.providers._local_llm import stop_started_servers
from timemory.schemas import (
    MEMORY_STATUSES,
    MEMORY_TYPES,
    SEARCH_MODES,
    SEARCH_SCOPES,
    SUBJECTS,
    Episode,
    Memory,
    MemoryEvent,
    SearchHit,
)
from timemory.service._dashboard_cli import add_dashboard_command
from timemory.service._lab_cli import add_lab_commands
from timemory.service._ops_cli import add_ops_commands
from timemory.service._workers import interrupt_on_signals, interrupted_status, stopped_by
from timemory.settings import Settings

T = TypeVar("T")
BATCH = 256


def _tm(args: argparse.Namespace) -> TiMem:
    return TiMem.from_settings(Settings())


def _users(tm: TiMem, user: str | None) -> list[str]:
    """The one user asked for, or every user."""
    return [user] if user else [u.id for u in tm.users.list()]


def _batches(items: list[T], desc: str, quiet: bool) -> Iterator[list[T]]:
    """Fixed-size slices with a progress bar (one embedding call each)."""
    for start in tqdm(range(0, len(items), BATCH), desc=desc, disable=quiet):
        yield items[start : start + BATCH]


def cmd_ingest(args: argparse.Namespace) -> int:
    tm = _tm(args)
    sessions = load_conversations(Path(args.file))
    batches = []
    for sess in sessions:
        fallback = f"Imported {sess['date']:%Y-%m-%d}" if sess["date"] else f"Imported {Path(args.file).name}"
        title = sess["title"] or fallback
        batches.append((title, sess["date"], list(exchanges(sess["messages"]))))
    total = sum(len(b[2]) for b in batches)
    changes = failed = 0
    with tqdm(total=total, desc="ingesting", unit="exchange", disable=args.quiet) as bar:
        for title, date, chunks in batches:
            session = tm.sessions.create(user_id=args.user, title=title, created_at=date)
            for chunk in chunks:
                result = tm.process_messages(chunk, user_id=args.user, session_id=session.id)
                changes += len(result.changes)
                if result.status == "failed":
                    failed += 1
                    tqdm.write(f"exchange failed: {'; '.join(result.errors)}", file=sys.stderr)
                bar.update(1)
    print(f"{total} exchanges, {changes} memory changes, {failed} failed runs (see pipeline_runs for traces)")
    return 1 if failed and failed == total else 0


def cmd_add(args: argparse.Namespace) -> int:
    memory = _tm(args).add(args.content, user_id=args.user, type=args.type, subject=args.subject)
    print(f"{memory.id}\t{memory.type}\t{memory.content}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    tm = _tm(args)
    statuses = None if args.all else ("active",)
    for hit in tm.search(args.query, user_id=args.user, limit=args.limit, types=args.type, statuses=statuses,
                         mode=args.mode, scope=args.scope):
        print(f"{hit.score:.3f}  {describe_hit(hit)}")
        if hit.scores:
            print(f"       {hit.scores.explain()}")
        for source in hit.sources:
            print(f"       learnt from: {describe_episode(source)}")
    return 0


def describe_episode(e: Episode) -> str:
    return f"{e.speaker} on {e.created_at:%Y-%m-%d %H:%M}: {e.content}  (message {e.message_id})"


def describe_hit(hit: SearchHit) -> str:
    """One line: a memory with its type and status, or a message with who said it when, and what was learnt."""
    if hit.memory is not None:
        return f"[{hit.memory.type}/{hit.memory.status}]  {hit.memory.content}  ({hit.memory.id})"
    assert hit.episode is not None
    learnt = "; ".join(m.content for m in hit.episode.learnt)
    return f"[said] {describe_episode(hit.episode)}" + (f"\n       taught: {learnt}" if learnt else "")


def cmd_list(args: argparse.Namespace) -> int:
    tm = _tm(args)
    for user in _users(tm, args.user):
        for m in tm.list_memories(user_id=user, types=args.type, statuses=args.status, text=args.text,
                                  limit=args.limit):
            print(f"{m.user_id}\t{m.id}\t{m.type}\t{m.status}\t{m.updated_at:%Y-%m-%d}\t{m.content}")
    return 0


def _all_memories(tm: TiMem, user: str | None) -> list[Memory]:
    out: list[Memory] = []
    for u in _users(tm, user):
        offset = 0
        while batch := tm.list_memories(user_id=u, limit=1000, offset=offset):
            out.extend(batch)
            offset += len(batch)
    return out


def cmd_export(args: argparse.Namespace) -> int:
    tm = _tm(args)
    memories = _all_memories(tm, args.user)
    histories = None
    if args.with_history:
        if args.format == "csv":
            raise InvalidInputError("--with-history needs --format json or jsonl (CSV has one row per memory).")
        histories = {}
        for user in {m.user_id for m in memories}:
            histories.update(tm.histories([m.id for m in memories if m.user_id == user], user_id=user))
    if args.format == "csv":
        text = memories_to_csv(memories)
    elif args.format == "jsonl":
        text = memories_to_jsonl(memories, histories)
    else:
        text = memories_to_json(memories, histories)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"exported {len(memories)} memories to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Memories with their history are restored as they were (ids, times, links, events); others are added."""
    tm = _tm(args)
    records = read_export(Path(args.file))
    by_user: dict[str, list[tuple[Memory, list[MemoryEvent] | None]]] = {}
    for m, events in records:
        by_user.setdefault(args.user or m.user_id, []).append((m, events))
    done = 0
    for user, items in by_user.items():
        for chunk in _batches(items, f"importing {user}", args.quiet):
            done += tm.import_memories(chunk, user_id=user)
    print(f"imported {done} memories ({len(records) - done} already present)")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    tm = _tm(args)
    if args.if_empty and tm.users.list():
        return 0
    created = seed_demo(tm)
    if not created:
        print("demo users already have memories; nothing to do")
    for user, n in created.items():
        print(f"{user}: {n} memories")
    return 0


def cmd_reembed(args: argparse.Namespace) -> int:
    from timemory.wiring import build_embedder, build_store

    settings = Settings()
    embedder = build_embedder(settings)
    store = build_store(settings, embedder, check_embedding_model=False)
    for user in store.users.list():
        rows = store.memories.texts(user.id)
        for chunk in _batches(rows, f"re-embedding {user.id}", args.quiet):
            vectors = embedder.embed([c for _, c in chunk])
            store.memories.replace_vectors(user.id, {mid: v for (mid, _), v in zip(chunk, vectors, strict=True)})
    store.episodes.forget_vectors()  # each message is embedded again by the next search that meets it
    store.memories.reset_embedding_model(embedder.name, embedder.dim)
    print(f"every memory now uses {embedder.name} ({embedder.dim} dimensions)")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="timemory", description="TiMemory: long-term memory for LLM chat.")
    p.add_argument("--version", action="version", version=f"timemory {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", help="learn memories from a JSON conversation file")
    s.add_argument("file")
    s.add_argument("--user", required=True)
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("add", help="store one memory as given (no model call)")
    s.add_argument("content")
    s.add_argument("--user", required=True)
    s.add_argument("--type", choices=MEMORY_TYPES, default="preference")
    s.add_argument("--subject", choices=SUBJECTS, help="the single-valued thing it holds (home, job, ...)")
    s.set_defaults(func=cmd_add)

    s = sub.add_parser("search", help="search a user's memories (or everything they said) by meaning and words")
    s.add_argument("query")
    s.add_argument("--user", required=True)
    s.add_argument("--limit", type=int, default=5)
    s.add_argument("--mode", choices=SEARCH_MODES, default=DEFAULT_SEARCH_MODE,
                   help="hybrid (meaning + words, the default), vector (meaning) or keyword (words)")
    s.add_argument("--scope", choices=SEARCH_SCOPES, default=DEFAULT_SEARCH_SCOPE,
                   help="memories, episodes (the stored messages, each found also by what was learnt from it) or "
                        "all (both in one list)")
    s.add_argument("--type", action="append", choices=MEMORY_TYPES)
    s.add_argument("--all", action="store_true", help="include outdated memories")
    s.set_defaults(func=cmd_search)

    s = sub.add_parser("list", help="list memories")
    s.add_argument("--user")
    s.add_argument("--type", action="append", choices=MEMORY_TYPES)
    s.add_argument("--status", action="append", choices=MEMORY_STATUSES)
    s.add_argument("--text")
    s.add_argument("--limit", type=int, default=100)
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("export", help="export memories as JSON, JSON lines or CSV")
    s.add_argument("--format", choices=["json", "jsonl", "csv"], default="json")
    s.add_argument("--with-history", action="store_true", help="each memory with its events (import restores them)")
    s.add_argument("--user")
    s.add_argument("-o", "--output")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("import", help="import memories from an export (JSON, JSON lines or CSV)")
    s.add_argument("file")
    s.add_argument("--user", help="import into this user instead of the file's user ids")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("seed-demo", help="load the demo users, sessions and memories")
    s.add_argument("--if-empty", action="store_true", help="only when the database has no users yet")
    s.set_defaults(func=cmd_seed)

    s = sub.add_parser("reembed", help="re-embed every memory with the configured embedder")
    s.set_defaults(func=cmd_reembed)

    add_lab_commands(sub)

    add_ops_commands(sub)
    add_dashboard_command(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command. SIGTERM and SIGHUP stop it as Ctrl-C does (``serve`` and ``worker`` put their own handlers
    over these); whichever way it ends, the bundled model's server it started is stopped before it returns."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    interrupt_on_signals()
    try:
        status = int(args.func(args))
    except TiMemoryError as exc:
        print(f"error ({exc.code}): {exc}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        status = interrupted_status()
    finally:
        stop_started_servers()
        # An interrupt that landed in code run by exec() (dataclasses build their methods so) and was caught leaves
        # CPython taking it for unhandled: the process would then end by SIGINT, not with the status returned here.
        # Running exec() once more clears that.
        exec("")
    if stopped_by() is not None:
        _leave_now(status)
    return status


def _leave_now(status: int) -> None:
    """A command a signal stopped does not wait for threads still working for it (the MCP server reads its client's
    next line in one, a line that may never come): its model's server stopped, the process ends here."""
    others = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    if any(t.is_alive() for t in others):
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(status)
