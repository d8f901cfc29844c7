from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from databases import BACKENDS, make_store

from timemory import TiMem
from timemory.providers import LLM, LocalEmbedder
from timemory.store import Store


@pytest.fixture(scope="session")
def embedder() -> LocalEmbedder:
    """The real local MiniLM embedder (loaded once per test session)."""
    return LocalEmbedder()


@pytest.fixture(params=BACKENDS)
def store(request, embedder, tmp_path) -> Iterator[Store]:
    s = make_store(request.param, embedder, tmp_path)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(embedder, tmp_path) -> Iterator[Store]:
    s = make_store("sqlite", embedder, tmp_path)
    yield s
    s.close()


@pytest.fixture
def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def tm(store: Store, embedder: LocalEmbedder) -> TiMem:
    """An engine without an LLM on each backend (add, search, edit, history)."""
    return TiMem(store, embedder)


@pytest.fixture
def tm_with(store: Store, embedder: LocalEmbedder) -> Callable[[LLM], TiMem]:
    """Make an engine on each backend with the given model (usually a double from ``doubles.py``)."""
    return lambda llm: TiMem(store, embedder, llm)
