"""The engine: extraction, candidates, consolidation, the pipeline, hand edits, time travel, chat and the job queue.

Everything here is built on :class:`Engine` (backends passed in); :class:`timemory.TiMem` is the door to it."""

from timemory.core.accounts import DEFAULT_TITLE, Sessions, Users, in_reply_order
from timemory.core.answers import (
    EXTRACTED_FACTS,
    FACT_CHARS,
    REASON_CHARS,
    answer_cap,
    consolidation_schema,
    extraction_schema,
    largest_answer,
    reflection_schema,
    request,
)
from timemory.core.candidates import CandidatePolicy, candidate_memories, reads_like_change
from timemory.core.chat import ChatService, ChatTurn, clean_title
from timemory.core.consolidation import Plan, consolidation_cap, find_candidates, plan_consolidation
from timemory.core.engine import DEFAULT_SEARCH_MODE, DEFAULT_SEARCH_SCOPE, Engine
from timemory.core.given import GivenPolicy
from timemory.core.jobs import FINISHED, Jobs, Worker
from timemory.core.reflection import REFLECTION, Reflection, ReflectionPolicy, refusal, validate_changes
from timemory.core.summaries import Summaries, SummaryPolicy, drift
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
    "drift",
    "DEFAULT_SEARCH_MODE",
    "DEFAULT_SEARCH_SCOPE",
    "DEFAULT_TITLE",
    "EXTRACTED_FACTS",
    "FACT_CHARS",
    "REASON_CHARS",
    "FINISHED",
    "CandidatePolicy",
    "GivenPolicy",
    "Summaries",
    "SummaryPolicy",
    "ChatService",
    "ChatTurn",
    "Engine",
    "EventLog",
    "Jobs",
    "Plan",
    "REFLECTION",
    "Reflection",
    "ReflectionPolicy",
    "Sessions",
    "Users",
    "Worker",
    "answer_cap",
    "candidate_memories",
    "clean_title",
    "consolidation_cap",
    "consolidation_schema",
    "counts_over_time",
    "exchanges",
    "extraction_schema",
    "find_candidates",
    "in_reply_order",
    "largest_answer",
    "load_conversations",
    "memories_to_csv",
    "memories_to_json",
    "memories_to_jsonl",
    "plan_consolidation",
    "read_export",
    "read_memories",
    "reflection_schema",
    "reads_like_change",
    "request",
    "refusal",
    "validate_changes",
]
