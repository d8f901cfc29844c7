"""TiMemory as a service: the HTTP API (FastAPI) over the ``TiMem`` facade."""

from timemory.service._api.app import create_app

__all__ = ["create_app"]
