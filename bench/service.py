"""The HTTP API under load (requests/s and latency of search and list at 10 and 50 concurrent clients, one uvicorn
process on loopback) and the chat's time to first token when the previous exchange is learnt inline or queued."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import ROOT, Stats, pin_threads

USER = "bench"
MEMORIES = 10_000


async def _load(url: str, clients: int, requests: int, method: str, path: str, body: Any) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    failures = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal failures
        while not queue.empty():
            queue.get_nowait()
            started = time.perf_counter()
            r = await http.request(method, path, params={"user_id": USER},
                                   json=body if method == "POST" else None)
            latencies.append(time.perf_counter() - started)
            failures += r.status_code != 200

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        for _ in range(min(20, requests)):  # warm up the server's caches and threads
            await http.request(method, path, params={"user_id": USER}, json=body if method == "POST" else None)
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - started
    return {"clients": clients, "requests": requests, "failures": failures,
            "per_second": round(requests / wall, 1), **Stats.of(latencies).__dict__}


def api_load(folder: Path, memories: int = MEMORIES, clients: tuple[int, ...] = (10, 50),
             per_client: int = 20) -> dict[str, Any]:
    """One API process with one user of 10k memories; search and list at 10 and 50 concurrent clients."""
    from timemory.providers import LocalEmbedder, free_port
    from timemory.store import Store

    from .corpus import embedded, load_into

    embedder = LocalEmbedder()
    texts, vectors = embedded(memories, embedder)
    db = f"sqlite:///{folder}/service.db"
    store = Store.from_url(db, embedding_model=embedder.name, embedding_dim=embedder.dim)
    load_into(store, USER, texts[:memories], vectors[:memories])
    store.close()
    port = free_port()
    env = {**os.environ, "TIMEMORY_DATABASE_URL": db, "HF_HUB_OFFLINE": "1"}
    with (folder / "server.log").open("w") as log:
        server = subprocess.Popen([sys.executable, "-m", "timemory", "serve", "--port", str(port),
                                   "--worker-threads", "0"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        out: dict[str, Any] = {"memories": memories, "rows": []}
        for label, method, path, body in (("search", "POST", "/v1/search", {"query": "Where does the user live?",
                                                                             "limit": 5}),
                                          ("list", "GET", "/v1/memories", None)):
            for n in clients:
                print(f"  service: {label}, {n} clients", flush=True)
                row = asyncio.run(_load(url, n, per_client * n, method, path, body))
                out["rows"].append({"call": label, **row})
        return out
    finally:
        server.terminate()
        server.wait(30)


def chat_first_token(folder: Path, rounds: int = 3) -> dict[str, Any]:
    """Send a message the moment the previous reply has streamed: its first token waits for the previous
    exchange's extraction when that runs inline, not when it is queued (local model)."""
    from timemory import Settings, TiMem

    settings = Settings(_env_file=None, data_dir=folder, openai_api_key=None, openai_base_url=None)  # type: ignore[call-arg]
    tm = TiMem.from_settings(settings)
    chat = tm.chat
    "".join(chat.llm.stream([{"role": "user", "content": "Hello"}]))  # the model server is up and warm
    first = "I just moved to Porto and I started a job as a nurse."
    second = "What should I see there this weekend?"
    out: dict[str, list[float]] = {"inline": [], "queued": []}
    for r in range(rounds):
        session = tm.sessions.create(user_id=f"inline-{r}")
        last_token = 0.0
        for _token in chat.chat_with_memory_stream(first, user_id=session.user_id, session_id=session.id):
            last_token = time.perf_counter()  # the reply is on screen; learning runs before the loop ends
        tokens = iter(chat.chat_with_memory_stream(second, user_id=session.user_id, session_id=session.id,
                                                   process=False))
        next(tokens)
        out["inline"].append(time.perf_counter() - last_token)
        list(tokens)

        session = tm.sessions.create(user_id=f"queued-{r}")
        one = chat.submit(first, user_id=session.user_id, session_id=session.id)
        for _token in one.follow():
            last_token = time.perf_counter()
        two = chat.submit(second, user_id=session.user_id, session_id=session.id)
        next(iter(two.follow()))
        out["queued"].append(time.perf_counter() - last_token)
        two.wait(300)
        one.wait(300)
    return {k: Stats.of(v).__dict__ for k, v in out.items()}


def measure(memories: int = MEMORIES, clients: tuple[int, ...] = (10, 50), per_client: int = 20,
            rounds: int = 3) -> dict[str, Any]:
    pin_threads()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        return {"api": api_load(folder, memories, clients, per_client), "chat": chat_first_token(folder, rounds)}


def section(data: dict[str, Any]) -> list[str]:
    api, chat = data["api"], data["chat"]
    out = ["## 7. The service: HTTP API under load, and the chat's first token", "",
           f"Measured on {data['machine']['date']} (same machine). One `python -m timemory serve` process (uvicorn, "
           f"SQLite, no queue worker) on loopback; one user with {api['memories']:,} memories; each client sends its "
           "next request when the previous answer arrives, 20 requests per client after a warm-up. Search embeds "
           "the query on every request (MiniLM on the CPU); list is the memory browser's first page (50 rows and "
           "the count). Latency in ms:", "",
           "| call | clients | requests / s | p50 | p95 | p99 | failed |", "|---|---:|---:|---:|---:|---:|---:|"]
    for row in api["rows"]:
        out.append(f"| {row['call']} | {row['clients']} | {row['per_second']:.0f} | {row['p50']:.1f} | "
                   f"{row['p95']:.1f} | {row['p99']:.1f} | {row['failures']} |")
    inline, queued = Stats(**chat["inline"]), Stats(**chat["queued"])
    out += ["", "The chat with the local model (SmolLM2-135M): a second message sent the moment the first reply has "
            "streamed. With the exchange learnt inline its first token waits for the extraction and consolidation; "
            "queued, the reply starts while a queue worker learns from the first exchange (both share the one local "
            "model server, which answers one request at a time). Seconds from the end of the first reply to the "
            "first token of the second (p50 | p95 | p99 of "
            f"{inline.n} rounds):", "",
            "| the previous exchange is learnt | p50 | p95 | p99 |", "|---|---:|---:|---:|",
            f"| inline | {inline.p50 / 1000:.2f} | {inline.p95 / 1000:.2f} | {inline.p99 / 1000:.2f} |",
            f"| queued | {queued.p50 / 1000:.2f} | {queued.p95 / 1000:.2f} | {queued.p99 / 1000:.2f} |", ""]
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=2))
