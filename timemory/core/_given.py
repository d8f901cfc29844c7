"""What a chat reply is given besides the conversation: the user's memories closest to the message, and earlier
messages of theirs that support it (an extraction may have missed a detail; the message it was said in holds it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from timemory._prompts import (
    CHAT_MEMORY_BLOCK,
    CHAT_MESSAGES_BLOCK,
    CHAT_NO_MEMORY,
    CHAT_SUMMARY_BLOCK,
    CHAT_SYSTEM_PROMPT,
)
from timemory.core._engine import Engine
from timemory.schemas import Message, SearchHit


@dataclass(frozen=True)
class GivenPolicy:
    memories: int = 5
    # Below this cosine similarity a memory or message says nothing about the message: it is not given.
    min_similarity: float = 0.1
    # Supporting messages: at most this many, within about this many tokens.
    messages: int = 3
    message_tokens: int = 300


def given_to_reply(engine: Engine, policy: GivenPolicy, message: Message, *, user_id: str,
                   skip_messages: Sequence[str]) -> list[SearchHit]:
    """The memories close enough in meaning to ``message``, then supporting messages within the token budget: only
    messages said before it (one sent after it is a later turn's), none in ``skip_messages`` (the history the
    prompt carries), and no summary of its own session (the prompt has that one when it needs it)."""
    memories, said = engine.recall(message.content, user_id=user_id, memories=policy.memories,
                                   episodes=policy.messages, skip_messages=[message.id, *skip_messages])
    # by meaning: a word shared with the message alone is no reason to bring a memory up
    given = [h for h in memories if h.similarity >= policy.min_similarity]
    budget = policy.message_tokens
    for hit in said:
        episode = hit.episode
        assert episode is not None
        if episode.created_at > message.created_at or (
                episode.speaker == "summary" and episode.session_id == message.session_id):
            continue
        cost = approximate_tokens(hit.text)
        if hit.similarity >= policy.min_similarity and cost <= budget:
            budget -= cost
            given.append(hit)
    return given


def system_prompt(given: Sequence[SearchHit], summary: str | None, today: date) -> str:
    """The chat's system prompt: what the reply is given, and the session's summary when the prompt's history holds
    only its latest turns."""
    memories = [f"- [{h.memory.type}] {h.memory.content}" for h in given if h.memory is not None]
    said = [f"- {h.episode.created_at:%Y-%m-%d}, {h.episode.speaker}: {h.episode.content}" for h in given
            if h.episode is not None]
    blocks = [CHAT_MEMORY_BLOCK.format(memories="\n".join(memories)) if memories else CHAT_NO_MEMORY]
    if said:
        blocks.append(CHAT_MESSAGES_BLOCK.format(turns="\n".join(said)))
    if summary:
        blocks.append(CHAT_SUMMARY_BLOCK.format(summary=summary))
    return CHAT_SYSTEM_PROMPT.format(today=today.isoformat(), memory_block="\n".join(blocks))


def approximate_tokens(text: str) -> int:
    """About how many tokens ``text`` takes (four characters a token, as for English with common tokenisers)."""
    return max(1, len(text) // 4)
