"""Wiring, in one place: the configured store, search, embedder, LLM and engine from ``Settings`` (nothing is built
at import)."""

from __future__ import annotations

import threading

from openai import OpenAI

from timemory.core._engine import Engine
from timemory.providers._batching import BatchingEmbedder
from timemory.providers._embeddings import Embedder, LocalEmbedder, OpenAIEmbedder
from timemory.providers._llm import OpenAILLM
from timemory.providers._local_llm import LOCAL_MODEL_ALIAS, LOCAL_MODEL_LABEL, LocalLLMServer
from timemory.search import EpisodeIndex, build_search
from timemory.settings import LOCAL, Settings
from timemory.store import Store

__all__ = ["build_embedder", "build_engine", "build_llm", "build_store", "describe", "local_server"]

# The bundled 135M model can ramble until its context is full (8,192 tokens, minutes): a chat reply ends with the
# sentence under way after LOCAL_REPLY_SENTENCES_AFTER tokens, and stops at LOCAL_REPLY_TOKENS whatever happens.
LOCAL_REPLY_SENTENCES_AFTER = 60
LOCAL_REPLY_TOKENS = 200
KNOWN_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}

_servers: dict[str, LocalLLMServer] = {}
_servers_lock = threading.Lock()


def local_server(settings: Settings) -> LocalLLMServer:
    """One managed local server per data directory in this process."""
    key = str(settings.data_dir.resolve())
    with _servers_lock:
        if key not in _servers:
            _servers[key] = LocalLLMServer(settings.data_dir)
        return _servers[key]


def _openai_client(settings: Settings) -> OpenAI:
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed"
    return OpenAI(api_key=key, base_url=settings.openai_base_url, timeout=settings.llm_timeout,
                  max_retries=settings.llm_max_retries)


def build_llm(settings: Settings) -> OpenAILLM:
    if settings.llm_provider != "local":
        llm = OpenAILLM(_openai_client(settings), settings.resolved_llm_model)
        llm.label = f"{settings.resolved_llm_model} via {settings.openai_base_url or 'OpenAI'}"
        return llm
    server = local_server(settings)
    cache: dict[str, OpenAI] = {}

    def ready() -> OpenAI:
        url = server.ensure_running()  # starts, reuses or restarts the child process
        if url not in cache:
            cache.clear()
            cache[url] = OpenAI(api_key="local", base_url=url, timeout=settings.llm_timeout,
                                max_retries=settings.llm_max_retries)
        return cache[url]

    model = LOCAL_MODEL_ALIAS if settings.resolved_llm_model == LOCAL else settings.resolved_llm_model
    # llama.cpp rejects json_schema and enforces json_object + schema with a grammar: start there.
    return OpenAILLM(None, model, ensure_ready=ready, label=LOCAL_MODEL_LABEL,  # type: ignore[arg-type]
                     response_format="json_object_schema", max_reply_tokens=LOCAL_REPLY_TOKENS,
                     reply_sentence_after=LOCAL_REPLY_SENTENCES_AFTER, reads_replies=False)


def build_embedder(settings: Settings) -> Embedder:
    name = settings.resolved_embedding_model
    if name == LOCAL:
        return LocalEmbedder()
    return OpenAIEmbedder(_openai_client(settings), name, KNOWN_DIMS.get(name))


def build_store(settings: Settings, embedder: Embedder, *, check_embedding_model: bool = True) -> Store:
    return Store.from_url(
        settings.sqlalchemy_url(), embedding_model=embedder.name, embedding_dim=embedder.dim,
        connect_args=settings.connect_args(), vector_index=settings.vector_index,
        check_embedding_model=check_embedding_model,
    )


def build_engine(settings: Settings) -> Engine:
    """The engine the settings describe: database, its search, embedder and LLM, and the pipeline's knobs."""
    embedder = build_embedder(settings)
    if settings.embed_batching:  # concurrent searches (API clients, chat, workers) share encoder calls
        embedder = BatchingEmbedder(embedder)
    store = build_store(settings, embedder)
    cache_bytes = settings.cache_mb * 2**20
    search = build_search(store, cache_bytes=cache_bytes, approximate_from=settings.approximate_from or None)
    return Engine(store, search, embedder, build_llm(settings), similar_k=settings.similar_k,
                  similarity_threshold=settings.similarity_threshold, max_content_chars=settings.max_content_chars,
                  episodes=EpisodeIndex(store, max_bytes=cache_bytes))


def describe(settings: Settings) -> dict[str, str]:
    """What is in use, for people: database, LLM, embedder (no secrets)."""
    if settings.llm_provider == "local":
        llm = LOCAL_MODEL_LABEL
    elif settings.llm_provider == "openai":
        llm = f"OpenAI {settings.resolved_llm_model}"
    else:
        llm = f"{settings.resolved_llm_model} at {settings.openai_base_url}"
    emb = settings.resolved_embedding_model
    embedder = "all-MiniLM-L6-v2 (local, 384-d)" if emb == LOCAL else emb
    return {"database": settings.describe_database(), "llm": llm, "embedder": embedder}
