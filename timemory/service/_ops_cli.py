"""The commands that run TiMemory for others or look after it: serve, worker, keys, users and mcp."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from timemory._extras import require
from timemory._facade import TiMem
from timemory.settings import Settings


def add_ops_commands(sub: Any) -> None:
    """Add the service and housekeeping commands to the command line's subparsers."""
    s = sub.add_parser("serve", help="serve the HTTP API (OpenAPI docs at /docs)")
    s.add_argument("--host", default="127.0.0.1", help="without any API key only loopback is allowed")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1, help="server processes")
    s.add_argument("--worker-threads", type=int, default=1, help="queue worker threads in each server process")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("worker", help="drain the memory job queue (run as many as you like)")
    s.add_argument("--lease", type=float, default=60.0, help="seconds a job is held before another worker may take it")
    s.add_argument("--poll", type=float, default=0.5, help="seconds between looks at an empty queue")
    s.add_argument("--once", action="store_true", help="stop when the queue is empty")
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("keys", help="API keys: create (--user U | --admin), list, revoke KEY_ID")
    s.add_argument("action", choices=["create", "list", "revoke"])
    s.add_argument("key_id", nargs="?")
    s.add_argument("--user")
    s.add_argument("--admin", action="store_true")
    s.add_argument("--label")
    s.set_defaults(func=cmd_keys)

    s = sub.add_parser("users", help="users: list, or delete USER (erased everywhere, keys and jobs included)")
    s.add_argument("action", choices=["list", "delete"])
    s.add_argument("user", nargs="?")
    s.set_defaults(func=cmd_users)

    s = sub.add_parser("mcp", help="serve one user's memory to an MCP client over stdio")
    s.add_argument("--user", help="whose memory (default: TIMEMORY_MCP_USER)")
    s.set_defaults(func=cmd_mcp)


def cmd_serve(args: argparse.Namespace) -> int:
    from timemory.service._workers import serve

    serve(args.host, args.port, workers=args.workers, worker_threads=args.worker_threads)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from timemory.service._workers import run_worker

    done = run_worker(lease_seconds=args.lease, poll_seconds=args.poll, once=args.once)
    print(f"processed {done} jobs")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    tm = TiMem.from_settings(Settings())
    if args.action == "create":
        if bool(args.user) == bool(args.admin):
            print("error: give either --user U or --admin", file=sys.stderr)
            return 2
        key, token = tm.keys.create(user_id=args.user, admin=bool(args.admin), label=args.label)
        print(token)
        print(f"key {key.id} for {'every user (admin)' if key.admin else key.user_id}: shown once, keep it safe",
              file=sys.stderr)
    elif args.action == "list":
        for k in tm.keys.list():
            state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
            print(f"{k.id}\t{'admin' if k.admin else k.user_id}\t{state}\t{k.created_at:%Y-%m-%d}\t{k.label or ''}")
    else:
        if not args.key_id:
            print("error: keys revoke needs the key id (see keys list)", file=sys.stderr)
            return 2
        tm.keys.revoke(args.key_id)
        print(f"revoked {args.key_id}")
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    tm = TiMem.from_settings(Settings())
    if args.action == "list":
        for u in tm.users.list():
            print(f"{u.id}\t{u.memories_active} active\t{u.memories_outdated} outdated\t{u.sessions} sessions")
        return 0
    if not args.user:
        print("error: users delete needs the user id", file=sys.stderr)
        return 2
    if args.user not in {u.id for u in tm.users.list()}:
        print(f"error (not_found): no user '{args.user}'", file=sys.stderr)
        return 2
    removed = tm.erase_user(user_id=args.user)
    print(f"erased {args.user}: " + ", ".join(f"{n} {table}" for table, n in removed.items() if n))
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    require("mcp", "server", "The MCP server")
    from timemory.service._mcp import run

    user = args.user or os.environ.get("TIMEMORY_MCP_USER")
    if not user:
        print("error: say whose memory this server serves: --user U (or TIMEMORY_MCP_USER)", file=sys.stderr)
        return 2
    run(user)
    return 0
