"""A ``python -m timemory serve`` process over a seeded SQLite database, for the service benchmarks, and the two
requests they time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .common import ROOT

USER = "bench"


@contextmanager
def serving(folder: Path, db: str, name: str, **env: str) -> Iterator[str]:
    """``python -m timemory serve`` (no queue worker) on a free port with ``env`` added; yields its URL."""
    import httpx

    from timemory.providers import free_port

    port = free_port()
    environ = {**os.environ, "TIMEMORY_DATABASE_URL": db, "HF_HUB_OFFLINE": "1", **env}
    with (folder / f"{name}.log").open("w") as log:
        server = subprocess.Popen([sys.executable, "-m", "timemory", "serve", "--port", str(port),
                                   "--worker-threads", "0"], cwd=ROOT, env=environ, stdout=log,
                                  stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(30)


def seeded(folder: Path, memories: int) -> str:
    """A SQLite database with one user of ``memories`` memories (real embeddings); its URL."""
    from timemory.providers import LocalEmbedder
    from timemory.store import Store

    from .corpus import embedded, load_into

    embedder = LocalEmbedder()
    texts, vectors = embedded(memories, embedder)
    db = f"sqlite:///{folder}/service.db"
    store = Store.from_url(db, embedding_model=embedder.name, embedding_dim=embedder.dim)
    load_into(store, USER, texts[:memories], vectors[:memories])
    store.close()
    return db


SEARCH = ("POST", "/v1/search", {"query": "Where does the user live?", "limit": 5})
LIST = ("GET", "/v1/memories", None)
