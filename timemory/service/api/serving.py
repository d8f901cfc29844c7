"""The app factory uvicorn imports in each process when ``serve --workers N`` runs several."""

from __future__ import annotations

import os

from fastapi import FastAPI

from timemory.service.api.app import create_app


def app_from_environment() -> FastAPI:
    return create_app(worker_threads=int(os.environ.get("TIMEMORY_API_WORKER_THREADS", "1")))
