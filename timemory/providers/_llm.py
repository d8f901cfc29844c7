"""The one LLM path: the OpenAI SDK, against OpenAI or any OpenAI-compatible server (llama.cpp, Ollama, vLLM).

Structured output asks for OpenAI's ``json_schema`` first (strict, within the subset OpenAI accepts); servers that
reject it get ``json_object`` with the whole schema (llama.cpp enforces it with a grammar, bounds included), then
plain ``json_object``. Output that does not validate gets one
repair request; after that the caller gets an :class:`LLMOutputError`. Transport errors use the SDK's retries.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import openai
import pydantic
from openai import OpenAI

from timemory._prompts import REPAIR_PROMPT
from timemory.errors import LLMError, LLMOutputError

log = logging.getLogger(__name__)

T = TypeVar("T", bound=pydantic.BaseModel)
ChatMessages = list[dict[str, str]]


SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")
ABBREVIATION = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|Mr|Mrs|Ms|Dr|St)|\b[A-Z])\.$")


@dataclass
class Usage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # the answer cache's keys of the answers this work used or stored (so erasing a user finds them)
    answer_keys: list[str] = field(default_factory=list)

    def add(self, prompt: int, completion: int) -> None:
        self.calls += 1
        self.prompt_tokens += prompt
        self.completion_tokens += completion


class LLM(Protocol):
    """What the engine needs from a language model. Tests pass doubles with the same methods."""

    model: str

    def parse(self, messages: ChatMessages, schema: type[T], *, usage: Usage | None = None,
              max_tokens: int | None = None) -> T: ...

    def stream(self, messages: ChatMessages, *, usage: Usage | None = None) -> Iterator[str]: ...


def strict_json_schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with references inlined, every property required and no extra keys.

    OpenAI's strict mode needs required/additionalProperties; llama.cpp's grammar converter is happiest without $ref.
    """
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(copy.deepcopy(defs[node["$ref"].split("/")[-1]]))
            out = {k: resolve(v) for k, v in node.items() if k not in ("title", "default", "description")}
            if out.get("type") == "object" and "properties" in out:
                out["required"] = list(out["properties"].keys())
                out["additionalProperties"] = False
            return out
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)


# OpenAI's strict mode takes a subset of JSON Schema: no length or count bounds, no tuples.
_NOT_STRICT = ("maxLength", "minLength", "maxItems", "minItems")


def openai_strict_subset(schema: Any) -> Any:
    """``schema`` within what OpenAI's strict mode accepts: bounds dropped and a tuple (``prefixItems``) turned into
    an array of any of its items. Enums stay, so ids and actions are still constrained; the answer is validated on
    our side as always."""
    if isinstance(schema, list):
        return [openai_strict_subset(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: openai_strict_subset(v) for k, v in schema.items() if k not in _NOT_STRICT}
    if "prefixItems" in out:
        variants = out.pop("prefixItems")
        unique = [v for i, v in enumerate(variants) if v not in variants[:i]]
        out["items"] = unique[0] if len(unique) == 1 else {"anyOf": unique}
    return out


def _json_payload(text: str) -> str:
    """The JSON object inside a reply, tolerating code fences and chatter around it."""
    text = text.strip()
    if text.startswith("```"):
        text = text.strip("`")
        text = text[text.find("\n") + 1 :] if "\n" in text else text
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        return text[start : end + 1]
    return text


def resampled(llm: LLM, attempt: int) -> LLM:
    """``llm`` for the ``attempt``-th try of the same work: sampled differently where the model allows it (another
    seed, some temperature), since at temperature 0 the same request fails the same way again."""
    again = getattr(llm, "resampled", None)
    return again(attempt) if again is not None and attempt > 1 else llm


class OpenAILLM:
    """Chat, streaming and structured output over the OpenAI SDK."""

    FORMATS = ("json_schema", "json_object_schema", "json_object")

    def __init__(
        self,
        client: OpenAI,
        model: str,
        *,
        temperature: float = 0.0,
        ensure_ready: Callable[[], OpenAI] | None = None,
        label: str | None = None,
        response_format: str = "json_schema",
        max_output_tokens: int = 1024,
        max_reply_tokens: int | None = None,
        reply_sentence_after: int | None = None,
        reads_replies: bool = True,
    ) -> None:
        self._client = client
        # Structured answers are short; the cap stops a small model that loops from generating for minutes.
        self.max_output_tokens = max_output_tokens
        # A streamed reply's cap (None: the server's own limit); a small local model may never stop by itself.
        self.max_reply_tokens = max_reply_tokens
        # After this many streamed tokens a reply ends with its sentence (None: the model decides): a small model
        # that rambles gives a short answer that still reads whole, and the learning after it waits less.
        self.reply_sentence_after = reply_sentence_after
        # False: memory extraction gets only the user's lines of an exchange (a small model finds fewer facts in a
        # statement that has the assistant's reply beside it; benchmarks §13)
        self.reads_replies = reads_replies
        self.model = model
        self.temperature = temperature
        self.seed: int | None = None
        self._ensure_ready = ensure_ready
        self.label = label or model
        self._format_index = self.FORMATS.index(response_format)
        self._lock = threading.Lock()

    @classmethod
    def connect(
        cls, *, api_key: str | None, base_url: str | None, model: str, timeout: float = 120.0, max_retries: int = 2,
        **options: Any,
    ) -> OpenAILLM:
        """A client of its own for ``base_url``; ``options`` are the constructor's keyword options."""
        client = OpenAI(api_key=api_key or "not-needed", base_url=base_url, timeout=timeout, max_retries=max_retries)
        return cls(client, model, **options)

    @property
    def client(self) -> OpenAI:
        if self._ensure_ready is not None:
            self._client = self._ensure_ready()
        return self._client

    @property
    def response_format_mode(self) -> str:
        return self.FORMATS[self._format_index]

    # -- chat -------------------------------------------------------------------------------------------------------

    def stream(self, messages: ChatMessages, *, usage: Usage | None = None) -> Iterator[str]:
        """Yield the reply token by token."""
        try:
            chunks = self.client.chat.completions.create(  # type: ignore[call-overload]
                model=self.model,
                messages=messages,
                temperature=0.7,
                stream=True,
                **({"max_tokens": self.max_reply_tokens} if self.max_reply_tokens else {}),
                stream_options={"include_usage": True},
            )
            counted, emitted, tail = False, 0, ""  # tail: the reply's last characters
            for chunk in chunks:
                if chunk.usage is not None and usage is not None:
                    usage.add(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                    counted = True
                content = "".join(c.delta.content for c in chunk.choices if c.delta and c.delta.content)
                if not content:
                    continue
                if self._sentence_done(emitted, tail, content):
                    chunks.close()  # closing the stream ends the request, and the server stops generating
                    break
                emitted += 1
                tail = (tail + content)[-8:]
                yield content
            if usage is not None and not counted:
                usage.add(0, emitted)  # the server's count comes with the last chunk, which a stopped reply never gets
        except openai.OpenAIError as exc:
            raise LLMError(self._explain(exc)) from exc

    def _sentence_done(self, emitted: int, tail: str, content: str) -> bool:
        """Past the reply's sentence limit, a sentence has ended: the text so far ends with its punctuation and the
        next token is after a space (so "3.5" never cuts), and the point is not an abbreviation's ("e.g.", "Dr.")."""
        if not self.reply_sentence_after or emitted < self.reply_sentence_after:
            return False
        text = tail.rstrip()
        at_space = tail[-1:].isspace() or content[:1].isspace()
        return at_space and bool(SENTENCE_END.search(text)) and not ABBREVIATION.search(text)

    # -- structured output --------------------------------------------------------------------------------------------

    def parse(self, messages: ChatMessages, schema: type[T], *, usage: Usage | None = None,
              max_tokens: int | None = None) -> T:
        """Ask for JSON matching ``schema``; one repair round if the answer does not validate.

        ``max_tokens`` sizes the answer's cap to the request (default: ``max_output_tokens``)."""
        json_schema = strict_json_schema(schema)
        cap = max_tokens or self.max_output_tokens
        text = self._structured_call(messages, schema.__name__, json_schema, usage, cap)
        try:
            return schema.model_validate_json(_json_payload(text))
        except pydantic.ValidationError as first:
            error = _short_error(first)
            log.warning("LLM output did not match %s (%s); asking once to repair", schema.__name__, error)
        repair = [
            *messages,
            {"role": "assistant", "content": text[:4000]},
            {"role": "user", "content": REPAIR_PROMPT.format(error=error, schema=json.dumps(json_schema))},
        ]
        text2 = self._structured_call(repair, schema.__name__, json_schema, usage, cap)
        try:
            return schema.model_validate_json(_json_payload(text2))
        except pydantic.ValidationError as second:
            raise LLMOutputError(
                f"The model's answer did not match the {schema.__name__} schema after one repair attempt: "
                f"{_short_error(second)}. A larger model (OpenAI, or a bigger local server) avoids this."
            ) from second

    def _structured_call(
        self, messages: ChatMessages, name: str, json_schema: dict[str, Any], usage: Usage | None, cap: int
    ) -> str:
        while True:
            mode = self.response_format_mode
            response_format: dict[str, Any]
            if mode == "json_schema":
                response_format = {
                    "type": "json_schema",
                    "json_schema": {"name": name, "schema": openai_strict_subset(json_schema), "strict": True},
                }
            elif mode == "json_object_schema":
                response_format = {"type": "json_object", "schema": json_schema}
            else:
                response_format = {"type": "json_object"}
            try:
                resp = self.client.chat.completions.create(  # type: ignore[call-overload]
                    model=self.model, messages=messages, temperature=self.temperature,
                    response_format=response_format, max_tokens=cap,
                    **({"seed": self.seed} if self.seed is not None else {}),
                )
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                # A rejected response_format costs no tokens and happens once per client: not counted as a call.
                with self._lock:
                    if self._format_index + 1 < len(self.FORMATS) and self.FORMATS[self._format_index] == mode:
                        self._format_index += 1
                        log.info("server rejected response_format=%s; falling back to %s",
                                 mode, self.response_format_mode)
                        continue
                raise LLMError(self._explain(exc)) from exc
            except openai.OpenAIError as exc:
                raise LLMError(self._explain(exc)) from exc
            self._count(resp, usage)
            return resp.choices[0].message.content or ""

    def resampled(self, attempt: int) -> OpenAILLM:
        """This model for a retry: seed ``attempt`` and a temperature that grows with it (0.3 a try, at most 1)."""
        other = copy.copy(self)
        other.temperature = max(self.temperature, min(1.0, 0.3 * (attempt - 1)))
        other.seed = attempt
        return other

    # -- helpers ------------------------------------------------------------------------------------------------------

    @staticmethod
    def _count(resp: Any, usage: Usage | None) -> None:
        if usage is None:
            return
        u = getattr(resp, "usage", None)
        usage.add(getattr(u, "prompt_tokens", 0) or 0, getattr(u, "completion_tokens", 0) or 0)

    def _explain(self, exc: Exception) -> str:
        if isinstance(exc, openai.AuthenticationError):
            return f"The LLM server refused the API key ({self.label}). Check OPENAI_API_KEY."
        if isinstance(exc, openai.APITimeoutError):
            return f"The LLM ({self.label}) did not answer in time. Try again, or raise TIMEMORY_LLM_TIMEOUT."
        if isinstance(exc, openai.APIConnectionError):
            return f"Cannot reach the LLM server for {self.label}. Check OPENAI_BASE_URL or that the server runs."
        if isinstance(exc, openai.NotFoundError):
            return f"The LLM server does not know model '{self.model}'. Check TIMEMORY_LLM_MODEL."
        if isinstance(exc, openai.RateLimitError):
            return f"The LLM provider is rate-limiting requests ({self.label}). Wait and try again."
        return f"The LLM call failed ({self.label}): {type(exc).__name__}: {str(exc)[:300]}"


def _short_error(exc: pydantic.ValidationError) -> str:
    errs = exc.errors()
    if not errs:
        return str(exc)[:300]
    first = errs[0]
    loc = ".".join(str(p) for p in first.get("loc", ()))
    more = f" (+{len(errs) - 1} more)" if len(errs) > 1 else ""
    return f"{loc or 'value'}: {first.get('msg', '')}{more}"
