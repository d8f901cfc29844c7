"""TiMemory: long-term memory for LLM chat, on SQLite by default and TiDB at scale."""

from .chat import ChatService, ChatTurn
from .errors import (
    ChatError,
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
from .schemas import ChatSession, Memory, MemoryEvent, Message, PipelineResult, SearchHit
from .settings import Settings

__all__ = [
    "ChatError",
    "ChatService",
    "ChatSession",
    "ChatTurn",
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
    "Message",
    "NotFoundError",
    "PipelineResult",
    "SearchHit",
    "Settings",
    "TiMem",
    "TiMemoryError",
    "ValidationError",
]
