"""One key floods the API while another user is served: does the other user wait longer?

The flood is what stalls a server that holds a thread per waiting request: ``POST /v1/process?wait=true`` with no
queue worker running (every wait lasts its whole timeout) and chat streams whose model never answers (a stalled
model server: it accepts connections and says nothing until the client's timeout). The flooding client sends as
fast as the server lets it, and after a 429 it waits what ``Retry-After`` says, as an HTTP client with retries does.
Meanwhile another user lists their memories and searches them, one request after another; the same requests are
measured with no flood first, on the same server.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from typing import Any

from .api_server import LIST, SEARCH, USER, serving
from .common import Stats

FLOODER = "flooder"
WAITERS = 16  # concurrent wait=true requests the flooding client keeps open (the server allows 8 per user)
CHATTERS = 8  # concurrent chat streams it keeps open (the server allows 4 unfinished turns per user)


class StalledModel:
    """A TCP server that accepts every connection and never answers: a model server that hangs."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._held.append(conn)

    def close(self) -> None:
        self._sock.close()
        for conn in self._held:
            conn.close()


async def _victim(url: str, seconds: float) -> list[float]:
    import httpx

    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline:
            method, path, body = (SEARCH, LIST)[i % 2]
            started = time.perf_counter()
            r = await http.request(method, path, params={"user_id": USER}, json=body)
            latencies.append(time.perf_counter() - started)
            assert r.status_code == 200, r.text
            i += 1
    return latencies


async def _flooder(url: str, stop: asyncio.Event, counts: dict[str, int]) -> None:
    import httpx

    async def send(kind: str) -> None:
        while not stop.is_set():
            if kind == "wait":
                r = await http.post("/v1/process", params={"user_id": FLOODER, "wait": "true", "timeout": 10},
                                    json={"messages": [{"role": "user", "content": "I keep bees."}]})
            else:
                async with http.stream("POST", "/v1/chat", params={"user_id": FLOODER},
                                       json={"message": "Tell me about bees."}) as r:
                    async for _ in r.aiter_bytes():
                        pass
            counts[f"{kind} {r.status_code}"] = counts.get(f"{kind} {r.status_code}", 0) + 1
            if r.status_code == 429:
                await asyncio.sleep(float(r.headers.get("Retry-After", "1")))

    limits = httpx.Limits(max_connections=WAITERS + CHATTERS)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        tasks = [asyncio.create_task(send("wait")) for _ in range(WAITERS)]
        tasks += [asyncio.create_task(send("chat")) for _ in range(CHATTERS)]
        await stop.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _under_flood(url: str, seconds: float) -> tuple[list[float], dict[str, int]]:
    stop = asyncio.Event()
    counts: dict[str, int] = {}
    flooding = asyncio.create_task(_flooder(url, stop, counts))
    await asyncio.sleep(3)  # the flood is at its limits before the other user starts
    latencies = await _victim(url, seconds)
    stop.set()
    await flooding
    return latencies, counts


def flood(folder: Path, db: str, seconds: float = 20) -> dict[str, Any]:
    model = StalledModel()
    try:
        env = {"OPENAI_BASE_URL": model.url, "OPENAI_API_KEY": "not-needed", "TIMEMORY_LLM_MODEL": "stalled",
               "TIMEMORY_LLM_TIMEOUT": "10", "TIMEMORY_LLM_MAX_RETRIES": "0"}
        with serving(folder, db, "server-flood", **env) as url:
            asyncio.run(_victim(url, 2))  # warm: the encoder loaded, caches filled
            alone = asyncio.run(_victim(url, seconds))
            flooded, counts = asyncio.run(_under_flood(url, seconds))
    finally:
        model.close()
    return {"seconds": seconds, "waiters": WAITERS, "chatters": CHATTERS,
            "alone": Stats.of(alone).__dict__, "flooded": Stats.of(flooded).__dict__,
            "flood_requests": dict(sorted(counts.items()))}
