"""An LLM wrapper that keeps structured answers by the exact request, in the database.

A replay run again with unchanged prompts, model and inputs then gets the same answers without calling the model:
deterministic and free, which is what makes a prompt change comparable on the same data (only the requests the
change touches go to the model). Streamed chat replies are not cached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Protocol, TypeVar

import pydantic

from timemory.providers._llm import LLM, ChatMessages, Usage, strict_json_schema

T = TypeVar("T", bound=pydantic.BaseModel)


class AnswerStore(Protocol):
    """Where answers are kept (the store's ``answers`` repository)."""

    def get(self, key: str) -> str | None: ...

    def keep(self, key: str, model: str, response: str) -> None: ...


class CachedLLM:
    def __init__(self, inner: LLM, answers: AnswerStore) -> None:
        self.inner = inner
        self.answers = answers
        self.model = inner.model
        self.label = getattr(inner, "label", inner.model)
        self.reads_replies = getattr(inner, "reads_replies", True)
        self.hits = 0
        self.misses = 0

    def key(self, messages: ChatMessages, schema: type[pydantic.BaseModel], max_tokens: int | None) -> str:
        request = {"model": self.model, "messages": messages, "schema": strict_json_schema(schema),
                   "name": schema.__name__, "max_tokens": max_tokens}
        return hashlib.sha256(json.dumps(request, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def parse(self, messages: ChatMessages, schema: type[T], *, usage: Usage | None = None,
              max_tokens: int | None = None) -> T:
        key = self.key(messages, schema, max_tokens)
        if usage is not None:
            usage.answer_keys.append(key)
        cached = self.answers.get(key)
        if cached is not None:
            try:
                answer = schema.model_validate_json(cached)
            except pydantic.ValidationError:
                pass  # the schema changed since: ask again
            else:
                self.hits += 1
                return answer
        self.misses += 1
        answer = self.inner.parse(messages, schema, usage=usage, max_tokens=max_tokens)
        self.answers.keep(key, self.model, answer.model_dump_json())
        return answer

    def stream(self, messages: ChatMessages, *, usage: Usage | None = None) -> Iterator[str]:
        return self.inner.stream(messages, usage=usage)
