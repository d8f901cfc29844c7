"""TiMemory: long-term memory for LLM chat, on SQLite by default and TiDB at scale."""

from .errors import (
    ConcurrentUpdateError,
    ConfigurationError,
    ConflictError,
    DatabaseError,
    EmbeddingError,
    EmbeddingMismatchError,
    LLMError,
    LLMOutputError,
    NotFoundError,
    TiMemoryError,
    ValidationError,
)
from .pipeline import TiMem
from .schemas import Memory, MemoryEvent, PipelineResult, SearchHit
from .settings import Settings

__all__ = [
    "ConcurrentUpdateError",
    "ConfigurationError",
    "ConflictError",
    "DatabaseError",
    "EmbeddingError",
    "EmbeddingMismatchError",
    "LLMError",
    "LLMOutputError",
    "Memory",
    "MemoryEvent",
    "NotFoundError",
    "PipelineResult",
    "SearchHit",
    "Settings",
    "TiMem",
    "TiMemoryError",
    "ValidationError",
]
