"""The engine: extraction, candidates, consolidation, the pipeline, hand edits, time travel, chat and the job queue.

Everything here is built on :class:`Engine` (backends passed in); :class:`timemory.TiMem` is the door to it."""

from timemory.core.accounts import DEFAULT_TITLE, Sessions, Users
from timemory.core.answers import (
    EXTRACTED_FACTS,
    FACT_CHARS,
    REASON_CHARS,
    answer_cap,
    consolidation_schema,
    extraction_schema,
    largest_answer,
    request,
)
from timemory.core.chat import ChatService, ChatTurn, clean_title
from timemory.core.consolidation import Plan, consolidation_cap, find_candidates, plan_consolidation
from timemory.core.engine import DEFAULT_SEARCH_MODE, Engine
from timemory.core.jobs import FINISHED, Jobs, Worker
from timemory.core.pipeline import CANDIDATE_MODE
from timemory.core.timeline import EventLog, counts_over_time
from timemory.core.transfer import (
    exchanges,
    load_conversations,
    memories_to_csv,
    memories_to_json,
    memories_to_jsonl,
    read_export,
    read_memories,
)

__all__ = [
    "CANDIDATE_MODE",
    "DEFAULT_SEARCH_MODE",
    "DEFAULT_TITLE",
    "EXTRACTED_FACTS",
    "FACT_CHARS",
    "REASON_CHARS",
    "FINISHED",
    "ChatService",
    "ChatTurn",
    "Engine",
    "EventLog",
    "Jobs",
    "Plan",
    "Sessions",
    "Users",
    "Worker",
    "answer_cap",
    "clean_title",
    "consolidation_cap",
    "consolidation_schema",
    "counts_over_time",
    "exchanges",
    "extraction_schema",
    "find_candidates",
    "largest_answer",
    "load_conversations",
    "memories_to_csv",
    "memories_to_json",
    "memories_to_jsonl",
    "plan_consolidation",
    "read_export",
    "read_memories",
    "request",
]
