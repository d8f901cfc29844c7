"""Extraction: the facts about the user that one exchange states, from one structured LLM call."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date

from timemory._prompts import FACT_EXTRACTION_EXAMPLES, FACT_EXTRACTION_PROMPT, FACT_EXTRACTION_USER
from timemory.core._answers import EXTRACTED_FACTS, answer_cap, extraction_schema, fact_text, request
from timemory.core._consolidation import normalise_text
from timemory.providers._llm import LLM, Usage
from timemory.schemas import SUBJECTS, ExtractedFact, FactExtraction, Message, NewMessage

PROMPT_MESSAGE_CHARS = 2_000
PROMPT_CONVERSATION_CHARS = 8_000
Said = Message | NewMessage  # what extraction reads of a message: its role and content


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w{4,}", text.lower()))


# Each example fact, with the words of it that the example's user actually said ("nurse", "lyon", ...).
_EXAMPLE_WORDS = {normalise_text(f["content"]): _words(f["content"]) & _words(conversation)
                  for conversation, facts in FACT_EXTRACTION_EXAMPLES for f in facts}


def _copied_example(fact: str, conversation: str) -> bool:
    """True for a fact copied from the prompt's worked example rather than taken from this conversation."""
    key_words = _EXAMPLE_WORDS.get(normalise_text(fact))
    return key_words is not None and not key_words <= _words(conversation)


def _from_assistant(fact: str, messages: Sequence[Said]) -> bool:
    """True for a fact taken from the assistant's lines rather than the user's: it addresses someone ("your
    work"), or it shares words with the assistant's lines and none with the user's."""
    if re.search(r"\b(you|your|yours|yourself)\b", fact, flags=re.I):
        return True
    words = _words(fact) - {"user", "user's"}
    said = _words(" ".join(m.content for m in messages if m.role == "user"))
    replied = _words(" ".join(m.content for m in messages if m.role != "user"))
    return not words & said and len(words & replied) >= 2


def extraction_prompt(messages: Sequence[Said], today: date) -> tuple[list[dict[str, str]], str]:
    """The extraction request for checked messages (with the worked examples), and the conversation text it holds.
    ``today`` is the conversation's own date: a replay resolves "next week" against it, not the day of the replay."""
    lines = [f"{m.role}: {m.content[:PROMPT_MESSAGE_CHARS]}" for m in messages]
    conversation = "\n".join(lines)[-PROMPT_CONVERSATION_CHARS:]
    system = FACT_EXTRACTION_PROMPT.format(today=today.isoformat(), subjects=", ".join(SUBJECTS))
    prompt = [{"role": "system", "content": system}]
    for example, example_facts in FACT_EXTRACTION_EXAMPLES:
        prompt.append({"role": "user", "content": FACT_EXTRACTION_USER.format(conversation=example)})
        prompt.append({"role": "assistant", "content": json.dumps({"facts": list(example_facts)})})
    prompt.append({"role": "user", "content": FACT_EXTRACTION_USER.format(conversation=conversation)})
    return prompt, conversation


def extract_facts(llm: LLM, messages: Sequence[Said], today: date, usage: Usage) -> list[ExtractedFact]:
    """Distinct facts, whitespace folded, without the prompt's example facts the model copied; at most
    :data:`EXTRACTED_FACTS` (the request's schema allows no more), and without facts taken from what the assistant
    said."""
    prompt, conversation = extraction_prompt(messages, today)
    schema = extraction_schema()
    extraction = llm.parse(prompt, request(FactExtraction, schema), usage=usage, max_tokens=answer_cap(schema))
    facts: list[ExtractedFact] = []
    seen: set[str] = set()
    for f in extraction.facts:
        content = fact_text(f.content)
        if (not content or normalise_text(content) in seen or _copied_example(content, conversation)
                or _from_assistant(content, messages)):
            continue
        seen.add(normalise_text(content))
        facts.append(ExtractedFact(content=content, type=f.type, subject=f.subject))
    return facts[:EXTRACTED_FACTS]
