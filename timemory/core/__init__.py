"""The engine: extraction, candidates, consolidation, the pipeline, hand edits, time travel, chat and the job queue.

Everything here is built on :class:`Engine` (backends passed in); :class:`timemory.TiMem` is the door to it."""

from timemory.core._accounts import DEFAULT_TITLE, Sessions, Users, in_reply_order
from timemory.core._answers import FACT_CHARS, REASON_CHARS, request
from timemory.core._candidates import CandidatePolicy, find_candidates
from timemory.core._chat import ChatExchange, ChatService
from timemory.core._consolidation import number_candidates
from timemory.core._engine import DEFAULT_SEARCH_MODE, DEFAULT_SEARCH_SCOPE, Engine
from timemory.core._given import GivenPolicy
from timemory.core._jobs import FINISHED, Jobs, Worker
from timemory.core._reflection import Reflection, ReflectionPolicy
from timemory.core._summaries import Summaries, SummaryPolicy, drift
from timemory.core._timeline import EventLog, counts_over_time
from timemory.core._transfer import (
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
    "FACT_CHARS",
    "REASON_CHARS",
    "FINISHED",
    "CandidatePolicy",
    "GivenPolicy",
    "Summaries",
    "SummaryPolicy",
    "ChatService",
    "ChatExchange",
    "Engine",
    "EventLog",
    "Jobs",
    "Reflection",
    "ReflectionPolicy",
    "Sessions",
    "Users",
    "Worker",
    "find_candidates",
    "counts_over_time",
    "exchanges",
    "number_candidates",
    "in_reply_order",
    "load_conversations",
    "memories_to_csv",
    "memories_to_json",
    "memories_to_jsonl",
    "read_export",
    "read_memories",
    "request",
]
