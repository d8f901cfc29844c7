"""A counting pass-through in front of an OpenAI-compatible server: what each memory system sends and receives."""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Tally:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    request_chars: int = 0
    rejected: int = 0  # requests the server refused (e.g. longer than its context)
    rejected_prompt_tokens: int = 0  # their size as the server counted it
    paths: list[str] = field(default_factory=list)


class CountingProxy:
    """``http://127.0.0.1:PORT/v1`` forwards to ``upstream`` (non-streaming requests) and tallies token usage."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.tally = Tally()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                path = self.path[len("/v1"):] if self.path.startswith("/v1") else self.path
                request = urllib.request.Request(proxy.upstream + path, data=body, method="POST",
                                                 headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(request, timeout=600) as upstream:
                        status, payload = upstream.status, upstream.read()
                except urllib.error.HTTPError as exc:
                    status, payload = exc.code, exc.read()
                proxy._count(path, body, payload)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _count(self, path: str, body: bytes, payload: bytes) -> None:
        try:
            answer = json.loads(payload)
            usage = answer.get("usage") or {}
        except (ValueError, AttributeError):
            answer, usage = {}, {}
        refused = re.search(r"\((\d+) in the messages", json.dumps(answer.get("error", ""))) if not usage else None
        with self._lock:
            if refused:
                self.tally.rejected += 1
                self.tally.rejected_prompt_tokens += int(refused.group(1))
            self.tally.calls += 1
            self.tally.request_chars += len(body)
            self.tally.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.tally.completion_tokens += int(usage.get("completion_tokens") or 0)
            self.tally.paths.append(path)

    def reset(self) -> Tally:
        with self._lock:
            old, self.tally = self.tally, Tally()
        return old

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
