"""The app factory uvicorn imports in each process when ``serve --workers N`` runs several."""

from __future__ import annotations

import os

from fastapi import FastAPI

from timemory.service._api.app import create_app
from timemory.service._workers import exit_on_sigterm


def app_from_environment() -> FastAPI:
    exit_on_sigterm()  # each process of ``--workers N`` stops the bundled model's server it started on SIGTERM
    return create_app(worker_threads=int(os.environ.get("TIMEMORY_API_WORKER_THREADS", "1")))
