"""Pipeline cost per exchange (TiMemory vs mem0 ``infer=True``, same local server) and the local model's speed."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any

from .common import pin_threads, stopwatch
from .llm_proxy import CountingProxy

USER = "bench-user"


def exchange(*turns: str) -> list[dict[str, str]]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]


# Four turns each (user, assistant, user, assistant); later ones revise earlier facts.
CONVERSATIONS = [
    exchange("Hi! I'm Noor, I work as a pharmacist in Leeds.", "Nice to meet you, Noor! How do you like it?",
             "I love it, though the shifts are long. I go climbing on Saturdays to unwind.",
             "Climbing sounds like a great way to switch off."),
    exchange("I'm vegetarian, can you suggest a quick dinner?", "How about a chickpea curry? It takes 20 minutes.",
             "Great, but no coriander please, I can't stand it.", "Noted, I'll leave the coriander out."),
    exchange("Big news: I got a job offer in Lisbon!", "Congratulations! Will you take it?",
             "Yes, I'm moving there in March and will work at a hospital pharmacy.",
             "That's exciting, Lisbon is lovely in spring."),
    exchange("I've started learning Portuguese with an app.", "Boa sorte! How far along are you?",
             "Only two weeks in. I practise every morning with my coffee.", "A steady routine helps a lot."),
    exchange("My knee has been sore since climbing last week.", "Sorry to hear that. Have you seen a doctor?",
             "Not yet, I'll book a physio appointment and stop climbing for a month.",
             "Good idea, rest will help."),
    exchange("I moved to Lisbon last week, the flat is tiny but bright.", "Welcome to Lisbon! How is it going?",
             "Good! I've adopted a cat called Pastel.", "Pastel is a perfect name for a Lisbon cat."),
]


def local_model_speed(data_dir: str, answers: int = 3) -> dict[str, Any]:
    """Cold start to first token, then tokens per second on a streamed answer (llama.cpp, SmolLM2-135M)."""
    from openai import OpenAI

    from timemory.providers import LOCAL_MODEL_ALIAS, LocalLLMServer

    server = LocalLLMServer(data_dir)
    server.stop()
    prompt = [{"role": "user", "content": "Describe a walk along a river in autumn, in about 150 words."}]
    started = time.perf_counter()
    url = server.ensure_running()
    client = OpenAI(base_url=url, api_key="local")
    stream = client.chat.completions.create(model=LOCAL_MODEL_ALIAS, messages=prompt, stream=True, max_tokens=8)
    first_token = None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            first_token = time.perf_counter() - started
            break
    for _ in stream:
        pass
    rates = []
    for _ in range(answers):
        t0 = time.perf_counter()
        reply = client.chat.completions.create(model=LOCAL_MODEL_ALIAS, messages=prompt, max_tokens=200)
        seconds = time.perf_counter() - t0
        if reply.usage and reply.usage.completion_tokens:
            rates.append(reply.usage.completion_tokens / seconds)
    return {"server": server, "url": url, "cold_start_to_first_token_s": first_token,
            "tokens_per_s": statistics.median(rates) if rates else None}


def run_timemory(proxy: CountingProxy, embedder, conversations: list[list[dict[str, str]]]) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    from openai import OpenAI

    from timemory import TiMem
    from timemory.providers import LOCAL_MODEL_ALIAS, OpenAILLM
    from timemory.store import Store

    folder = tempfile.mkdtemp(prefix="bench-pipeline-")
    store = Store.from_url(f"sqlite:///{folder}/t.db", embedding_model=embedder.name, embedding_dim=embedder.dim)
    llm = OpenAILLM(OpenAI(base_url=proxy.url, api_key="local", timeout=300), LOCAL_MODEL_ALIAS,
                    response_format="json_object_schema")
    tm = TiMem(store, embedder, llm)
    out = []
    for conversation in conversations:
        proxy.reset()
        with stopwatch() as t:
            result = tm.process_messages(conversation, user_id=USER)
        tally = proxy.reset()
        out.append({"seconds": t[0], "llm_calls": tally.calls, "prompt_tokens": tally.prompt_tokens,
                    "completion_tokens": tally.completion_tokens, "embedding_calls": result.embedding_calls,
                    "status": result.status, "facts": len(result.facts), "changes": len(result.changes)})
    out[-1]["memories"] = tm.count_memories(user_id=USER)
    return out


def run_mem0(proxy: CountingProxy, conversations: list[list[dict[str, str]]]) -> list[dict[str, Any]]:
    from mem0 import Memory

    from timemory.providers import LOCAL_MODEL_ALIAS

    from .search import mem0_config

    folder = tempfile.mkdtemp(prefix="bench-mem0-pipeline-")
    os.environ["MEM0_DIR"] = folder
    m = Memory.from_config(mem0_config(folder, llm_base_url=proxy.url, model=LOCAL_MODEL_ALIAS))
    calls = {"n": 0}
    embed = m.embedding_model.embed

    def counting_embed(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        return embed(*args, **kwargs)

    m.embedding_model.embed = counting_embed  # type: ignore[method-assign]
    out = []
    for conversation in conversations:
        proxy.reset()
        calls["n"] = 0
        error = None
        with stopwatch() as t:
            try:
                added = m.add(conversation, user_id=USER, infer=True)
            except Exception as exc:  # noqa: BLE001 - the peer's failure is a result to report
                added, error = {}, f"{type(exc).__name__}: {exc}"[:200]
        tally = proxy.reset()
        out.append({"seconds": t[0], "llm_calls": tally.calls, "prompt_tokens": tally.prompt_tokens,
                    "completion_tokens": tally.completion_tokens, "embedding_calls": calls["n"],
                    "rejected_calls": tally.rejected, "rejected_prompt_tokens": tally.rejected_prompt_tokens,
                    "changes": len((added or {}).get("results", [])), "error": error})
    out[-1]["memories"] = len(m.get_all(filters={"user_id": USER}).get("results", []))
    return out


def measure(exchanges: int | None = None, answers: int = 3) -> dict[str, Any]:
    """``exchanges`` (default: all of them) and ``answers`` (for the generation speed) make it smaller."""
    pin_threads()
    os.environ.setdefault("MEM0_TELEMETRY", "False")
    conversations = CONVERSATIONS[:exchanges]
    from timemory.providers import LocalEmbedder

    data_dir = tempfile.mkdtemp(prefix="bench-llm-")
    print("  pipeline: local model cold start and speed", flush=True)
    speed = local_model_speed(data_dir, answers)
    server = speed.pop("server")
    proxy = CountingProxy(speed.pop("url"))
    try:
        print(f"  pipeline: TiMemory on {len(conversations)} four-turn exchanges", flush=True)
        timemory_rows = run_timemory(proxy, LocalEmbedder(), conversations)
        print("  pipeline: mem0 infer=True on the same exchanges", flush=True)
        mem0_rows = run_mem0(proxy, conversations)
    finally:
        proxy.close()
        server.stop()
    return {"local_model": speed, "timemory": timemory_rows, "mem0": mem0_rows}


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=2))
