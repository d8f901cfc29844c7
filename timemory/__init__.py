"""TiMemory: long-term memory for LLM chat, on SQLite by default and TiDB at scale.

:class:`TiMem` is the one door; the names below are the public API. The subpackages export their own documented
names: ``timemory.core`` (the engine), ``timemory.store``, ``timemory.search``, ``timemory.providers``,
``timemory.lab`` and ``timemory.service``.
"""

from timemory.core.chat import ChatService, ChatTurn
from timemory.errors import (
    ChatError,
    ConcurrentUpdateError,
    ConfigurationError,
    ConflictError,
    DatabaseError,
    EmbeddingError,
    EmbeddingMismatchError,
    LeaseLostError,
    LLMError,
    LLMOutputError,
    NotFoundError,
    TiMemoryError,
    ValidationError,
)
from timemory.facade import TiMem
from timemory.schemas import (
    MEMORY_STATUSES,
    MEMORY_TYPES,
    SEARCH_MODES,
    ChatSession,
    ConsolidationPlan,
    Experiment,
    FactExtraction,
    Job,
    JobLease,
    Judgement,
    Memory,
    MemoryEdit,
    MemoryEvent,
    Message,
    PipelineResult,
    RunDiff,
    ScoreBreakdown,
    SearchHit,
    SearchMode,
    UserSummary,
)
from timemory.settings import Settings
from timemory.validation import MemoryFilter

__all__ = [
    "MEMORY_STATUSES",
    "MEMORY_TYPES",
    "SEARCH_MODES",
    "ChatError",
    "ChatService",
    "ChatSession",
    "ChatTurn",
    "ConcurrentUpdateError",
    "ConfigurationError",
    "ConflictError",
    "ConsolidationPlan",
    "DatabaseError",
    "EmbeddingError",
    "EmbeddingMismatchError",
    "Experiment",
    "FactExtraction",
    "Job",
    "JobLease",
    "Judgement",
    "LLMError",
    "LLMOutputError",
    "LeaseLostError",
    "Memory",
    "MemoryEdit",
    "MemoryEvent",
    "MemoryFilter",
    "Message",
    "NotFoundError",
    "PipelineResult",
    "RunDiff",
    "ScoreBreakdown",
    "SearchHit",
    "SearchMode",
    "Settings",
    "TiMem",
    "TiMemoryError",
    "UserSummary",
    "ValidationError",
]
