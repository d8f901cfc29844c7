"""Test doubles (never used outside tests): a scripted LLM, a counting embedder, a fake OpenAI-compatible server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pydantic

from timemory import ConsolidationPlan, FactExtraction
from timemory.providers import Usage

Responder = Callable[[list[dict[str, str]], type[pydantic.BaseModel]], Any]


class ScriptedLLMDouble:
    """Answers structured calls from a script: extraction facts, then a consolidation function of the prompt."""

    model = "scripted-double"

    def __init__(
        self,
        facts: list[dict[str, str]] | None = None,
        consolidate: Callable[[str], list[dict[str, Any]]] | None = None,
        reply: str = "Noted, thanks for telling me!",
    ) -> None:
        self.facts = facts or []
        self.consolidate = consolidate or (lambda prompt: [])
        self.reply = reply
        self.calls: list[str] = []
        self.prompts: list[list[dict[str, str]]] = []
        self.caps: list[int | None] = []  # max_tokens asked for, per structured call

    def parse(self, messages: list[dict[str, str]], schema: type[pydantic.BaseModel], *,
              usage: Usage | None = None, max_tokens: int | None = None):
        self.calls.append(schema.__name__)
        self.caps.append(max_tokens)
        self.prompts.append(messages)
        if usage is not None:
            usage.add(100, 20)
        if issubclass(schema, FactExtraction):
            return FactExtraction.model_validate({"facts": self.facts})
        if issubclass(schema, ConsolidationPlan):
            return ConsolidationPlan.model_validate({"decisions": self.consolidate(messages[-1]["content"])})
        return schema.model_validate({"title": "A scripted title"})

    def stream(self, messages: list[dict[str, str]], *, usage: Usage | None = None) -> Iterator[str]:
        self.calls.append("stream")
        self.prompts.append(messages)
        if usage is not None:
            usage.add(50, 10)
        for word in self.reply.split(" "):
            yield word + " "


def short_id_of(prompt: str, content: str) -> int:
    """The short integer id the consolidation prompt gave to a memory with this content."""
    for line in prompt.splitlines():
        if line.endswith(content) and "] " in line and line.split(".")[0].isdigit():
            return int(line.split(".")[0])
    raise AssertionError(f"memory {content!r} not shown in prompt:\n{prompt}")


class CountingEmbedder:
    """Wraps a real embedder and counts calls; can be told to fail."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.calls = 0
        self.fail_with: Exception | None = None

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        return self.inner.embed(texts)


class FakeOpenAIServer:
    """An OpenAI-compatible HTTP server on 127.0.0.1 whose answers come from a script.

    ``handler(body) -> (status, payload)`` where payload is a reply text (wrapped into a chat completion) or a dict.
    """

    def __init__(self, handler: Callable[[dict[str, Any]], tuple[int, Any]]) -> None:
        self.handler = handler
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                outer.requests.append(body)
                status, payload = outer.handler(body)
                if body.get("stream") and status == 200:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for word in str(payload).split(" "):
                        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                                 "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.write(b"data: [DONE]\n\n")
                    return
                if isinstance(payload, str):
                    payload = {
                        "id": "c", "object": "chat.completion", "created": 0, "model": body.get("model", "m"),
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": payload},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
                    }
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # many clients connect at once in the load tests (the default backlog is 5)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def merge_or_skip(prompt: str, fact: str, topic: str = "tennis") -> list[dict[str, Any]]:
    """Consolidation for the two-writers tests: a fact already in memory is NONE; otherwise UPDATE the memory about
    ``topic`` with a merge of its current text and the fact (so a lost update would show as a lost fact)."""
    shown = {}  # short id -> content, from the EXISTING MEMORIES section only
    for line in prompt.split("EXISTING MEMORIES:", 1)[1].splitlines():
        if "] " in line and line.split(".")[0].isdigit():
            shown[int(line.split(".")[0])] = line.split("] ", 1)[1]
    key = fact.removeprefix("The user ").rstrip(".")
    known = [sid for sid, content in shown.items() if key in content]
    if known:
        return [{"fact": 0, "action": "NONE", "memory_id": known[0], "content": None, "reason": "already known"}]
    sid = next(sid for sid, content in shown.items() if topic in content)
    merged = f"{shown[sid].rstrip('.')}; {key}."
    return [{"fact": 0, "action": "UPDATE", "memory_id": sid, "content": merged, "reason": "adds detail"}]


class HashEmbedderDouble:
    """Deterministic 384-d unit vectors from word hashes (fast; texts sharing words are similar). Tests only."""

    name = "all-MiniLM-L6-v2"
    dim = 384

    def embed(self, texts: list[str]) -> np.ndarray:
        import hashlib

        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for word in t.lower().split():
                out[i, int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little") % self.dim] += 1
            out[i] /= max(float(np.linalg.norm(out[i])), 1e-9)
        return out


class ReflectingLLMDouble:
    """Answers reflection requests from a script: ``decide(shown)`` gets the memories shown ({content: short id})
    and returns the changes. Records every group it was shown."""

    model = "reflecting-double"

    def __init__(self, decide: Callable[[dict[str, int]], list[dict[str, Any]]]) -> None:
        self.decide = decide
        self.groups: list[dict[str, int]] = []

    def parse(self, messages: list[dict[str, str]], schema: type[pydantic.BaseModel], *,
              usage: Usage | None = None, max_tokens: int | None = None):
        if usage is not None:
            usage.add(120, 30)
        shown = {}
        for line in messages[-1]["content"].split("MEMORIES:", 1)[1].splitlines():
            if "] " in line and line.split(".")[0].isdigit():
                shown[line.split("] ", 1)[1]] = int(line.split(".")[0])
        self.groups.append(shown)
        return schema.model_validate({"changes": self.decide(shown)})
