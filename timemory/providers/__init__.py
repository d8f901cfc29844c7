"""Providers: the LLM client (and its answer cache), the embedders, and the bundled local model server."""

from timemory.providers._batching import BatchingEmbedder
from timemory.providers._cache import AnswerStore, CachedLLM
from timemory.providers._embeddings import Embedder, LocalEmbedder, OpenAIEmbedder, local_model_path
from timemory.providers._llm import LLM, ChatMessages, OpenAILLM, Usage
from timemory.providers._local_llm import LOCAL_MODEL_ALIAS, LOCAL_MODEL_LABEL, LocalLLMServer, free_port

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
]
