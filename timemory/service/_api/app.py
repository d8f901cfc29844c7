"""The HTTP API's application: one error shape, who is calling (API keys), metrics, and the queue worker thread.

Errors are always ``{"error": {"code": ..., "message": ...}}``, mapped from the engine's error classes. With no API
key in the database the API is open (it then only binds to loopback, see ``serve``); otherwise every request needs
``Authorization: Bearer <key>``: a user key acts for its own user only, an admin key for any user.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.exceptions import HTTPException as StarletteHTTPException

from timemory._facade import TiMem
from timemory.errors import (
    ConfigurationError,
    ConflictError,
    DatabaseError,
    EmbeddingError,
    ErasedUserError,
    InvalidInputError,
    LLMError,
    NotFoundError,
    TiMemoryError,
)
from timemory.schemas import PipelineResult
from timemory.service._api.auth import ApiError
from timemory.service._api.middleware import ServiceMiddleware, error_body, service_route_allowed
from timemory.service._api.routes import router
from timemory.settings import Settings

log = logging.getLogger(__name__)

STATUS_OF: list[tuple[type[TiMemoryError], int]] = [
    (InvalidInputError, 422), (NotFoundError, 404), (ErasedUserError, 410), (ConflictError, 409), (LLMError, 502),
    (EmbeddingError, 502), (DatabaseError, 503), (ConfigurationError, 503),
]


def status_of(exc: TiMemoryError) -> int:
    return next((status for cls, status in STATUS_OF if isinstance(exc, cls)), 500)


class _JobCounts(Collector):
    """Jobs in the queue by status, over every process: one query per scrape."""

    def __init__(self, tm: TiMem) -> None:
        self._tm = tm

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self._tm.jobs.counts()
        family = GaugeMetricFamily("timemory_jobs", "Jobs in the queue by status (all processes)", labels=["status"])
        for status in ("pending", "running", "done", "failed"):
            family.add_metric([status], float(counts.get(status, 0)))
        yield family


class Metrics:
    """Prometheus metrics (one registry per app, so tests can make several apps). Under ``serve --workers N`` every
    process writes its values to ``PROMETHEUS_MULTIPROC_DIR`` and a scrape of any of them adds all of them up."""

    def __init__(self, tm: TiMem) -> None:
        self._tm = tm
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("timemory_http_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("timemory_http_request_seconds",
                                 "HTTP request latency, to the last byte of the body (a chat stream's whole length)",
                                 ["route"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60))
        self.runs = Counter("timemory_pipeline_runs", "Pipeline runs saved by this process (queue, chat, reflection)",
                            ["kind", "status"], registry=self.registry)
        self.llm_calls = Counter("timemory_llm_calls", "LLM calls by what they were for: exchange (extraction and "
                                 "consolidation), reflection, chat (replies and titles)", ["purpose"],
                                 registry=self.registry)
        self.llm_failures = Counter("timemory_llm_failures", "Pipeline runs that failed on the model",
                                    registry=self.registry)
        registry.register(_JobCounts(tm))
        tm.on_run(self.observe_run)

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_run(self, result: PipelineResult) -> None:
        self.runs.labels(result.kind, result.status).inc()
        self.llm_calls.labels(result.kind).inc(result.llm_calls)
        if result.status == "failed" and any(e.startswith("llm") for e in result.errors):
            self.llm_failures.inc()

    def exposition(self) -> bytes:
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return generate_latest(self.registry)
        every_process = CollectorRegistry()
        multiprocess.MultiProcessCollector(every_process)
        every_process.register(_JobCounts(self._tm))
        return generate_latest(every_process)


def not_json(body: bytes, error: dict[str, Any]) -> str:
    """What is wrong with a body that is not JSON, where a person can find it (line and column, from 1)."""
    loc = list(error.get("loc") or [])
    at = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    why = (error.get("ctx") or {}).get("error")
    if at is None:
        return "The request body is not valid JSON."
    line = body[:at].count(b"\n") + 1
    column = at - (body.rfind(b"\n", 0, at) + 1) + 1
    return f"The request body is not valid JSON (line {line}, column {column}{': ' + why if why else ''})."


def create_app(tm: TiMem | None = None, *, worker_threads: int = 1,
               service_routes_open: bool | None = None) -> FastAPI:
    """The API over ``tm`` (by default the configured engine), with ``worker_threads`` queue workers.
    ``service_routes_open`` (by default from the settings) lets /metrics, the docs and /healthz's details answer
    without a key where keys exist."""
    tm = tm or TiMem.from_settings()
    if service_routes_open is None:
        service_routes_open = Settings().service_routes_open
    metrics = Metrics(tm)
    workers = [tm.worker() for _ in range(max(0, worker_threads))]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for w in workers:
            w.start()
        yield
        for w in workers:
            w.stop(timeout=5)

    app = FastAPI(title="TiMemory", version="1", lifespan=lifespan,
                  description="Long-term memory for LLM chat: memories, search, chat, sessions and the job queue.")
    app.state.tm, app.state.metrics, app.state.workers = tm, metrics, workers

    @app.exception_handler(TiMemoryError)
    async def timemory_error(request: Request, exc: TiMemoryError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, str(exc)), status_code=status_of(exc))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else exc.headers
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        broken = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
        if broken is not None:
            return JSONResponse(error_body("invalid_input", not_json(await request.body(), broken)), status_code=422)
        details = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}" for e in exc.errors())
        return JSONResponse(error_body("invalid_input", details[:2000]), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body that is not even text (invalid UTF-8): bad input, like malformed JSON
            return JSONResponse(error_body("invalid_input", str(exc.detail)), status_code=422)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse(error_body("internal", "Something went wrong on the server."), status_code=500)

    app.add_middleware(ServiceMiddleware, tm=tm, service_routes_open=service_routes_open, record=metrics.record)

    @app.get("/healthz", tags=["service"])
    def healthz(request: Request) -> dict[str, Any]:
        """Alive, and whether the database answers (503 when it does not). Which database and model, and the jobs
        by status, only for an admin key where keys exist (see ``service_routes_open``)."""
        jobs = tm.jobs.counts()
        if not service_route_allowed(tm, service_routes_open, request.headers.get("authorization", "")):
            return {"status": "ok"}
        return {"status": "ok", "jobs": jobs, **tm.describe()}

    @app.get("/metrics", tags=["service"], response_class=Response)
    def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


    app.include_router(router)
    return app
