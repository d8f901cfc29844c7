"""The HTTP API under load (requests/s and latency of search and list at 10 and 50 concurrent clients, one uvicorn
process on loopback) and the chat's time to first token when the previous exchange is learnt inline or queued."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from .api_server import LIST, SEARCH, USER, seeded, serving
from .common import Stats, pin_threads

MEMORIES = 10_000


def _request_bytes(url: str, method: str, path: str, body: Any) -> bytes:
    """One HTTP/1.1 request, encoded once and sent as it is on every call."""
    host = url.split("//", 1)[1]
    payload = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path}?user_id={USER} HTTP/1.1\r\nHost: {host}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    return (head + "\r\n").encode() + payload


async def _answer_status(reader: asyncio.StreamReader) -> int:
    """Read one whole answer (the API answers with Content-Length); its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:"))
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def _load(url: str, clients: int, requests: int, method: str, path: str, body: Any) -> dict[str, Any]:
    """``requests`` calls from ``clients`` keep-alive connections, each sending its next call when the previous
    answer has arrived. The client writes pre-encoded requests on raw sockets: it takes about a tenth of the CPU
    of an httpx client per call, which on a two-core machine would otherwise be taken from the server measured."""
    request = _request_bytes(url, method, path, body)
    host, port = url.split("//", 1)[1].split(":")
    latencies: list[float] = []
    failures = 0
    left = requests

    async def client(warm_up: int) -> None:
        nonlocal failures, left
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for _ in range(warm_up):  # the server's caches and threads are warm
                writer.write(request)
                await _answer_status(reader)
            await warm.wait()
            while left > 0:
                left -= 1
                started = time.perf_counter()
                writer.write(request)
                status = await _answer_status(reader)
                latencies.append(time.perf_counter() - started)
                failures += status != 200
        finally:
            writer.close()

    warm = asyncio.Barrier(clients + 1)  # the clock starts when every connection has warmed up
    tasks = [asyncio.create_task(client(2)) for _ in range(clients)]
    await warm.wait()
    started = time.perf_counter()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - started
    return {"clients": clients, "requests": requests, "failures": failures,
            "per_second": round(requests / wall, 1), **Stats.of(latencies).__dict__}


def api_load(folder: Path, db: str, memories: int = MEMORIES, clients: tuple[int, ...] = (1, 10, 50),
             per_client: int = 20) -> dict[str, Any]:
    """Search at 1, 10 and 50 concurrent clients with concurrent queries encoded together and one at a time (two
    servers, one after the other, on the same database); the memory list with batching on."""
    out: dict[str, Any] = {"memories": memories, "rows": []}
    for batching in ("true", "false"):
        with serving(folder, db, f"server-batching-{batching}", TIMEMORY_EMBED_BATCHING=batching) as url:
            calls = [("search", *SEARCH)] + ([("list", *LIST)] if batching == "true" else [])
            for label, method, path, body in calls:
                for n in clients:
                    print(f"  service: {label}, {n} clients, batching {batching}", flush=True)
                    row = asyncio.run(_load(url, n, per_client * n, method, path, body))
                    out["rows"].append({"call": label, "batching": batching == "true", **row})
    return out


def encoder_throughput(queries: int = 200, batches: tuple[int, ...] = (1, 10, 16)) -> dict[str, float]:
    """Queries per second of the local query encoder alone, ``b`` queries per call for each ``b`` of ``batches``."""
    from timemory.providers import LocalEmbedder

    embedder = LocalEmbedder()
    texts = [f"Where did the user go on trip number {i}?" for i in range(queries)]
    embedder.embed(texts[:max(batches)])  # loaded and warm
    out: dict[str, float] = {}
    for batch in batches:
        started = time.perf_counter()
        for i in range(0, queries, batch):
            embedder.embed(texts[i:i + batch])
        out[f"batch_{batch}"] = round(queries / (time.perf_counter() - started), 1)
    return out


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


def measure(memories: int = MEMORIES, clients: tuple[int, ...] = (1, 10, 50), per_client: int = 20,
            rounds: int = 3, flood_seconds: float = 20) -> dict[str, Any]:
    from .fairness import flood

    pin_threads()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = seeded(folder, memories)
        return {"encoder": encoder_throughput(), "api": api_load(folder, db, memories, clients, per_client),
                "flood": flood(folder, db, flood_seconds), "chat": chat_first_token(folder, rounds)}


def section(data: dict[str, Any]) -> list[str]:
    api, chat, encoder, flood = data["api"], data["chat"], data["encoder"], data["flood"]
    bound = 1000 * 10 / encoder["batch_10"]  # ms: 10 queries encoded in one call, nothing else done
    out = ["## 7. The service: HTTP API under load, and the chat's first token", "",
           f"Measured on {data['machine']['date']} (same machine). One `python -m timemory serve` process (uvicorn, "
           f"SQLite, no queue worker) on loopback; one user with {api['memories']:,} memories; each client keeps one "
           "connection and sends its next request when the previous answer arrives, 20 requests per client after a "
           "warm-up. The load client writes pre-encoded requests on raw sockets, so it takes little of the two "
           "cores the server runs on (an httpx client took about 2.5 ms of CPU per call, a quarter of a search). "
           "Search embeds the query on every request (MiniLM on ONNX Runtime, on the CPU); list is the memory "
           "browser's first page (50 rows and the count).", "",
           f"The query encoder alone answers **{encoder['batch_1']:.0f} queries/s** one query per call, "
           f"{encoder['batch_10']:.0f} queries/s 10 per call and {encoder['batch_16']:.0f} queries/s 16 per call. "
           f"So at 10 clients no search can average under {bound:.0f} ms here: that is the encoder's own time for "
           "10 queries in one call, before any HTTP, SQL or ranking. With batching on (the default, "
           "`TIMEMORY_EMBED_BATCHING`), the queries of concurrent searches that wait at the same time are encoded in "
           "one call; off, each search encodes its own. Latency in ms:", "",
           "| call | batching | clients | requests / s | of the encoder's batch-1 rate | p50 | p95 | p99 | failed |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in api["rows"]:
        share = f"{row['per_second'] / encoder['batch_1']:.0%}" if row["call"] == "search" else "—"
        out.append(f"| {row['call']} | {'on' if row.get('batching', True) else 'off'} | {row['clients']} | "
                   f"{row['per_second']:.0f} | {share} | {row['p50']:.1f} | {row['p95']:.1f} | {row['p99']:.1f} | "
                   f"{row['failures']} |")
    alone, flooded = Stats(**flood["alone"]), Stats(**flood["flooded"])
    sent = ", ".join(f"{k}: {v}" for k, v in flood["flood_requests"].items())
    out += ["", "**One key floods, another user is served.** Another user lists and searches their memories one "
            f"request after another for {flood['seconds']:.0f} s, first alone, then while one key keeps "
            f"{flood['waiters']} `POST /v1/process?wait=true` requests (no worker runs, so each waits its whole "
            f"10 s) and {flood['chatters']} chat streams open against a model server that never answers "
            f"(`bench/fairness.py`). What the flooding key was answered (route and status: count): {sent}. The other "
            "user's latency in ms:", "",
            "| the other user is served | requests | p50 | p95 | p99 |", "|---|---:|---:|---:|---:|",
            f"| alone | {alone.n} | {alone.row()} |", f"| during the flood | {flooded.n} | {flooded.row()} |"]
    inline, queued = Stats(**chat["inline"]), Stats(**chat["queued"])
    out += ["", "The chat with the local model (SmolLM2-135M): a second message sent the moment the first reply has "
            "streamed. Every exchange is learnt by a queue worker; with `chat_with_memory_stream` (inline: the "
            "caller waits for that job before its loop ends) the second reply's first token waits for the "
            "extraction and consolidation; with `submit` (queued) the reply starts while the worker learns from the "
            "first exchange (both share the one local "
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
