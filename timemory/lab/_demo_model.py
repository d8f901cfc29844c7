"""The demo's model answers, written by hand: what a capable model extracts from each demo session and decides about
it. The demo is built by replaying its conversations through the real pipeline with these answers, so its runs,
traces, diffs and outdated memories are real and need no model; every run names this model ("scripted demo
answers"), so nobody takes them for a model's work.

It answers only the requests the demo's own sessions make: anything else is an :class:`LLMError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, TypeVar

from pydantic import BaseModel

from timemory.errors import LLMError
from timemory.providers._llm import ChatMessages, Usage

T = TypeVar("T", bound=BaseModel)

SCRIPTED_MODEL = "scripted demo answers"

# A learnt item: (content, type), or (content, type, "replaces" | "merges", the earlier memory's content).
Learnt = tuple[str, ...]

# Subject keys a capable model gives (see schemas.SUBJECTS): they bring the memory a change replaces to consolidation
# whatever its wording.
SUBJECT_WORDS = {"lives in": "home", "works as": "job", "engineer in": "job", "student in": "education",
                 "vegetarian": "diet", "pescatarian": "diet", "bouldering": "exercise", "sport climbing": "exercise",
                 "The user runs": "exercise"}


def subject_of(content: str) -> str | None:
    return next((key for words, key in SUBJECT_WORDS.items() if words in content), None)


class ScriptedDemoModel:
    """An LLM (``parse`` only) that answers from the demo's hand-written "learnt" items."""

    model = SCRIPTED_MODEL
    label = "scripted demo answers (no model runs)"

    def __init__(self, sessions: list[dict[str, Any]]) -> None:
        self._sessions = sessions
        self._items: dict[str, Learnt] = {item[0]: item for s in sessions for item in s["learnt"]}

    def parse(self, messages: ChatMessages, schema: type[T], *, usage: Usage | None = None,
              max_tokens: int | None = None) -> T:
        text = str(messages[-1]["content"])
        name = schema.__name__
        if name == "FactExtraction":
            answer = self._extraction(text)
        elif name == "ConsolidationPlan":
            answer = self._consolidation(text)
        elif name == "ReflectionPlan":
            answer = {"changes": []}  # the demo's memories are consistent
        else:
            raise LLMError(f"The demo's scripted answers have nothing for a {name} request.")
        if usage is not None:
            usage.add(0, 0)  # a call, with no tokens: nothing ran
        return schema.model_validate(answer)

    def stream(self, messages: ChatMessages, *, usage: Usage | None = None) -> Iterator[str]:
        raise LLMError("The demo's scripted answers cannot chat: configure a model to chat with.")

    def _extraction(self, text: str) -> dict[str, Any]:
        session = next((s for s in self._sessions if s["messages"][0][:200] in text), None)
        if session is None:
            raise LLMError("The demo's scripted answers know no such conversation.")
        return {"facts": [{"content": item[0], "type": item[1], "subject": subject_of(item[0])}
                          for item in session["learnt"]]}

    def _consolidation(self, text: str) -> dict[str, Any]:
        new, _, existing = text.partition("EXISTING MEMORIES:")
        facts = re.findall(r"^(\d+)\. \[\w+\] (.*)$", new, flags=re.M)
        shown = {content: int(sid) for sid, content in re.findall(r"^(\d+)\. \[[^\]]*\] (.*)$", existing, flags=re.M)}
        decisions = []
        for number, content in facts:
            item = self._items.get(content, (content, ""))
            decision = {"fact": int(number), "action": "ADD", "memory_id": None, "content": None,
                        "reason": "new information"}
            if content in shown:
                decision.update(action="NONE", memory_id=shown[content], reason="already known")
            elif len(item) == 4 and item[3] in shown and item[2] == "replaces":
                decision.update(action="OUTDATE", memory_id=shown[item[3]], reason="replaces an earlier memory")
            elif len(item) == 4 and item[3] in shown and item[2] == "merges":
                decision.update(action="UPDATE", memory_id=shown[item[3]], content=content,
                                reason="adds detail to what was known")
            decisions.append(decision)
        return {"decisions": decisions}
