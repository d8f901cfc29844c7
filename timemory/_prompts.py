"""Every prompt the engine sends, in one place."""

from __future__ import annotations

from typing import Any

FACT_EXTRACTION_PROMPT = """\
You extract long-term memories about the USER from a conversation.
Return JSON: {{"facts": [{{"content": "...", "type": "...", "subject": ...}}]}}.

Rules:
- Only facts about the user that stay useful later: who they are, what they like, do, plan, their health, their work.
- One short, self-contained sentence per fact, in the third person ("The user ...").
- type is exactly one of: personal, preference, activity, plan, health, professional.
- subject: when the fact tells the current state of something a person has one of at a time, name it with one of
  {subjects}; otherwise null.
- Only what the USER said: never a fact taken from the assistant's lines (a reply's "your work as a nurse" is the
  assistant speaking, not the user). Ignore greetings, questions to the assistant, and anything about the assistant.
- If there is nothing worth remembering, return {{"facts": []}}.
- Today is {today}. Turn relative dates ("next week") into absolute ones when you can.
- The first conversations you get are worked examples about somebody else: never repeat their facts.
"""

# Worked examples sent as earlier user/assistant turns: small models copy an example that sits inside the system
# prompt into their answer, but treat earlier turns as finished work. The second example teaches that an exchange
# with nothing about the user gives no facts (without it the 135M local model invents some).
FACT_EXTRACTION_EXAMPLES: tuple[tuple[str, tuple[dict[str, Any], ...]], ...] = (
    (
        "user: Hi! I'm a nurse in Lyon and I just started learning the cello.\n"
        "assistant: Lovely! How are the first lessons going?",
        (
            {"content": "The user works as a nurse in Lyon.", "type": "professional", "subject": "job"},
            {"content": "The user is learning to play the cello.", "type": "activity", "subject": None},
        ),
    ),
    (
        "user: Can you explain how a rainbow forms?\n"
        "assistant: Sunlight is refracted and reflected inside raindrops...",
        (),
    ),
)

FACT_EXTRACTION_USER = """Conversation:
{conversation}

Answer with JSON only."""

MEMORY_CONSOLIDATION_PROMPT = """\
You keep a user's long-term memory consistent. You get NEW FACTS (numbered from 0) and EXISTING MEMORIES
(with short integer ids). For every new fact choose one action:

- ADD: the fact is new information. memory_id null, content null.
- UPDATE: the fact refines or adds detail to an existing memory that is still true. memory_id = that memory,
  content = one merged sentence keeping both pieces of information.
- OUTDATE: the fact contradicts or replaces an existing memory (moved city, changed job, no longer likes...).
  memory_id = the memory that is no longer true; the new fact is stored and the old one is kept as outdated.
- NONE: the fact is already known (same meaning as an existing memory). memory_id = that memory.

Use only the ids listed. Give a short reason for each decision.
Return JSON: {{"decisions": [{{"fact": 0, "action": "ADD", "memory_id": null, "content": null, "reason": "..."}}]}}
"""

MEMORY_CONSOLIDATION_USER = """NEW FACTS:
{facts}

EXISTING MEMORIES:
{memories}

Answer with JSON only."""

REFLECTION_PROMPT = """\
You review part of a user's long-term memory for memories that are no longer true or that say the same thing
twice. You get MEMORIES, oldest first, each with a short integer id and the date it was learnt. Report only what
must change:

- OUTDATE: a later memory in the list replaces this one (moved city, changed job, stopped, ended...).
  memory_id = the memory that is no longer true, by = the later memory that replaces it, content null.
- MERGE: this memory says the same as another one in the list. memory_id = the duplicate to retire,
  by = the memory to keep, content = one sentence holding everything both say.

Things that can both be true (two hobbies, two trips) are not changes. If nothing must change, return an empty list.
Use only the ids listed. Give a short reason for each.
Return JSON: {{"changes": [{{"memory_id": 1, "action": "OUTDATE", "by": 2, "content": null, "reason": "..."}}]}}
"""

REFLECTION_USER = """MEMORIES:
{memories}

Answer with JSON only."""

REPAIR_PROMPT = """\
Your previous answer could not be used: {error}
Answer again with only a JSON object that matches this JSON schema:
{schema}"""

CHAT_SYSTEM_PROMPT = """\
You are a helpful, friendly assistant with a long-term memory of the user.
Today is {today}.
{memory_block}
Use what you remember when it helps; do not list memories unprompted, and never invent facts about the user."""

CHAT_MEMORY_BLOCK = """What you remember about the user (most relevant first):
{memories}"""

CHAT_NO_MEMORY = "You do not remember anything about the user yet."

CHAT_MESSAGES_BLOCK = """Earlier messages that may help (date, who said it):
{turns}"""

SUMMARY_PROMPT = """\
Summarise this conversation between a user and an assistant in at most {words} words, in the third person ("The
user ..."). Keep names, places, dates, numbers and decisions; leave out greetings and small talk. Reply with the
summary only.

{previous}Conversation:
{messages}"""

SUMMARY_PREVIOUS = """Summary of the conversation before these messages:
{summary}

"""

CHAT_SUMMARY_BLOCK = """Earlier in this conversation (a summary of the messages before the ones below):
{summary}"""

TITLE_PROMPT = """\
Give this chat a short title of at most 6 words. Reply with the title only, on one line, without quotes.

user: {user}
assistant: {assistant}"""

# --- the lab: answer a benchmark question from memories, and grade the answer -----------------------------------------

ANSWER_PROMPT = """\
Answer the question using only these memories about the people in a conversation. Reply with a short answer
(a few words). If the memories do not say, reply "I don't know".

Memories:
{memories}

Question: {question}"""

JUDGE_PROMPT = """\
You grade an answer against the gold answer to a question. The answer is correct when it means the same as the
gold answer (wording, extra detail and date formats may differ); otherwise it is wrong.
Return JSON: {{"correct": true or false, "reason": "..."}}

Question: {question}
Gold answer: {gold}
Answer: {answer}"""
