"""Providers: the LLM client (and its answer cache), the embedders, and the bundled local model server."""

from timemory.providers.batching import BatchingEmbedder
from timemory.providers.cache import AnswerStore, CachedLLM
from timemory.providers.embeddings import Embedder, LocalEmbedder, OpenAIEmbedder, local_model_path
from timemory.providers.llm import (
    LLM,
    ChatMessages,
    OpenAILLM,
    Usage,
    openai_strict_subset,
    resampled,
    strict_json_schema,
)
from timemory.providers.local_llm import LOCAL_MODEL_ALIAS, LOCAL_MODEL_LABEL, LocalLLMServer, free_port, pid_alive

__all__ = [
    "LLM",
    "LOCAL_MODEL_ALIAS",
    "LOCAL_MODEL_LABEL",
    "AnswerStore",
    "BatchingEmbedder",
    "CachedLLM",
    "ChatMessages",
    "Embedder",
    "LocalEmbedder",
    "LocalLLMServer",
    "OpenAIEmbedder",
    "OpenAILLM",
    "Usage",
    "free_port",
    "local_model_path",
    "openai_strict_subset",
    "pid_alive",
    "resampled",
    "strict_json_schema",
]
