"""What every request goes through before and after its route, as one plain ASGI middleware (Starlette's
``BaseHTTPMiddleware`` costs a task group and a stream per request, on the hot path of every search).

Before a ``/v1`` body is read: a body over the limit is refused (413), and a call without a key where keys exist
(401, not a complaint about its body); the service routes need an admin key where keys exist unless the settings open
them. After: the request is counted and timed to the last byte of its body, so a chat stream is timed whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from timemory._facade import TiMem
from timemory.service._api.auth import KEYS_EXIST, bearer_key

MAX_BODY_BYTES = 16 * 1024 * 1024  # the largest valid body (200 messages of 32,000 characters) fits

# Where keys exist these answer only an admin key, unless the settings open them (service_routes_open).
SERVICE_ROUTES = frozenset({"/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})

def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def unauthorized(message: str) -> JSONResponse:
    return JSONResponse(error_body("unauthorized", message), status_code=401, headers={"WWW-Authenticate": "Bearer"})


def service_route_allowed(tm: TiMem, routes_open: bool, authorization: str) -> bool:
    """Whether a service route (metrics, docs, health details) may answer this caller in full."""
    if routes_open or not tm.keys.any_active():
        return True
    key = bearer_key(tm, authorization)
    return key is not None and key.admin


class ServiceMiddleware:
    def __init__(self, app: ASGIApp, *, tm: TiMem, service_routes_open: bool,
                 record: Callable[[str, str, int, float], None]) -> None:
        self.app, self.tm, self.service_routes_open, self.record = app, tm, service_routes_open, record

    async def refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> JSONResponse | None:
        path = scope["path"]
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if path in SERVICE_ROUTES and not await run_in_threadpool(service_route_allowed, self.tm,
                                                                  self.service_routes_open, authorization):
            return unauthorized("This needs an admin key (Authorization: Bearer <key>), or "
                                "TIMEMORY_SERVICE_ROUTES_OPEN=true.")
        if not path.startswith("/v1/"):
            return None
        length = headers.get(b"content-length", b"").decode("latin-1")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            return JSONResponse(error_body("too_large", f"The body is {int(length):,} bytes; at most "
                                                        f"{MAX_BODY_BYTES:,} are read."), status_code=413)
        if not authorization:
            keys_exist = await run_in_threadpool(self.tm.keys.any_active)
            scope.setdefault("state", {})[KEYS_EXIST] = keys_exist  # the route's caller check asks no more
            if keys_exist:
                return unauthorized("Send an API key: Authorization: Bearer <key>.")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, recorded = 500, False

        def done() -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                route = getattr(scope.get("route"), "path", "unmatched")
                self.record(scope["method"], route, status, time.perf_counter() - started)

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                done()

        try:
            refused = await self.refusal(scope, dict(scope.get("headers") or []))
            if refused is not None:
                await refused(scope, receive, timed_send)
            else:
                await self.app(scope, receive, timed_send)
        finally:
            done()
