"""The lab: replay throughput with the local model (per exchange, per session, warm LLM cache) and the time to
recall a user's memory state (``state_at``) and one run's diff from 10k events."""

from __future__ import annotations

import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .common import Stats, pin_threads, timed
from .pipeline import CONVERSATIONS


def dataset_file(folder: Path, sessions: int = 3) -> Path:
    """A two-speaker conversation in LoCoMo's shape from the pipeline benchmark's exchanges (made here, not LoCoMo)."""
    conversation: dict[str, Any] = {"speaker_a": "Noor", "speaker_b": "Sam"}
    turn = 0
    for s in range(sessions):
        day = datetime(2023, 3, 1, tzinfo=UTC) + timedelta(days=9 * s)
        conversation[f"session_{s + 1}_date_time"] = f"{day:%-I:%M %p on %-d %B, %Y}".replace("AM", "am").replace(
            "PM", "pm")
        turns = []
        for ex in CONVERSATIONS[2 * s: 2 * s + 2]:
            for m in ex:
                turn += 1
                turns.append({"speaker": "Noor" if m["role"] == "user" else "Sam", "dia_id": f"D{s + 1}:{turn}",
                              "text": m["content"]})
        conversation[f"session_{s + 1}"] = turns
    path = folder / "bench-dialogue.json"
    path.write_text(json.dumps([{"sample_id": "bench", "conversation": conversation, "qa": []}]))
    return path


def replay_throughput(folder: Path) -> dict[str, Any]:
    from timemory import Settings, TiMem
    from timemory.datasets import load_dataset
    from timemory.lab import replay, units_of
    from timemory.llm_cache import CachedLLM

    settings = Settings(_env_file=None, data_dir=folder, openai_api_key=None, openai_base_url=None)  # type: ignore[call-arg]
    tm = TiMem.from_settings(settings)
    assert tm.llm is not None
    dataset = load_dataset(dataset_file(folder), "locomo", speaker="a")
    "".join(tm.llm.stream([{"role": "user", "content": "Hello"}]))  # the server is started and warm before timing
    out: dict[str, Any] = {"exchanges": len(units_of(dataset, "x-")), "sessions": len(units_of(dataset, "x-",
                                                                                               "session"))}
    cached = CachedLLM(tm.llm, tm.store)
    for label, prefix, granularity, llm in (("per exchange", "ex-", "exchange", tm.llm),
                                            ("per session", "se-", "session", tm.llm),
                                            ("per exchange, cold cache", "c1-", "exchange", cached),
                                            ("per exchange, warm cache", "c2-", "exchange", cached)):
        tm.llm = llm
        print(f"  lab: replay {label}", flush=True)
        started = time.perf_counter()
        report = replay(tm, dataset, user_prefix=prefix, granularity=granularity)  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        runs = tm.store.list_runs(f"{prefix}bench-a", limit=1000)
        out[label] = {"runs": report.processed, "failed": len(report.failed), "seconds": round(seconds, 2),
                      "exchanges_per_min": round(out["exchanges"] / seconds * 60, 1),
                      "llm_calls": sum(r.llm_calls for r in runs),
                      "memories": len(tm.list_memories(f"{prefix}bench-a"))}
    out["cache_hits"] = cached.hits
    return out


def time_travel(folder: Path, events: int = 10_000) -> dict[str, Any]:
    """A user with ``events`` events (adds, edits, status changes over a simulated year), then state_at and
    run_diff timed."""
    import numpy as np

    from timemory import TiMem
    from timemory.embeddings import LocalEmbedder
    from timemory.schemas import PipelineResult
    from timemory.store import AddMemory, ChangeMemory, Store

    embedder = LocalEmbedder()
    store = Store.from_url(f"sqlite:///{folder}/time.db", embedding_model=embedder.name, embedding_dim=embedder.dim)
    tm = TiMem(store, embedder)
    rng = np.random.default_rng(7)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    user, ids, written, n = "bench-time", [], 0, 0
    vec = rng.standard_normal((1, embedder.dim)).astype(np.float32)[0]
    while written < events:
        when = start + timedelta(minutes=5 * n)
        n += 1
        ops: list[AddMemory | ChangeMemory] = []
        if len(ids) < 50 or random.Random(n).random() < 0.4:
            ops.append(AddMemory(content=f"Memory {n}", type="personal", embedding=vec, created_at=when,
                                 actor="user"))
        else:
            target = ids[random.Random(n).randrange(len(ids))]
            ops.append(ChangeMemory(memory_id=target, content=f"Memory edited at {n}", embedding=vec, at=when,
                                    status=random.Random(n + 1).choice(["active", "outdated"])))
        changes = store.apply(user, ops, run_id=f"run-{n}")
        store.save_run(PipelineResult(run_id=f"run-{n}", user_id=user, created_at=when))
        ids += [c.memory_id for c in changes if c.event == "ADD"]
        written += len(changes)
    middle, end = start + timedelta(minutes=5 * n // 2), start + timedelta(minutes=5 * n)
    from timemory import timeline

    loaded = store.events(user)  # what the Timeline page caches per data version: moving its slider replays only
    return {
        "state_at_cached_events": timed(lambda: timeline.state_at(user, loaded, middle), 10).__dict__,
        "events": written, "memories": len(ids),
        "state_at_middle": timed(lambda: tm.state_at(user, middle), 10).__dict__,
        "state_at_end": timed(lambda: tm.state_at(user, end), 10).__dict__,
        "run_diff": timed(lambda: tm.run_diff(f"run-{n // 2}", user), 30).__dict__,
    }


def measure() -> dict[str, Any]:
    pin_threads()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        return {"replay": replay_throughput(folder), "time_travel": time_travel(folder)}


def section(lab: dict[str, Any]) -> list[str]:
    r, t = lab["replay"], lab["time_travel"]
    out = ["## 6. The lab: replay and time travel", "",
           f"Measured on {lab['machine']['date']} (same machine).", "",
           f"Replay of a made-up two-person dialogue in LoCoMo's format ({r['exchanges']} exchanges in "
           f"{r['sessions']} dated sessions, one speaker as the user) through the local model (SmolLM2-135M). "
           "Per session runs the pipeline once per session; the warm cache run replays the same data into new users "
           "with every model answer taken from the LLM cache.", "",
           "| replay | runs | failed | seconds | exchanges / min | LLM calls | memories |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for label in ("per exchange", "per session", "per exchange, cold cache", "per exchange, warm cache"):
        x = r[label]
        out.append(f"| {label} | {x['runs']} | {x['failed']} | {x['seconds']:.1f} | {x['exchanges_per_min']:.0f} | "
                   f"{x['llm_calls']} | {x['memories']} |")
    out += ["", f"Time travel over one user with {t['events']:,} events ({t['memories']:,} memories), "
            "SQLite, times in ms (p50 | p95 | p99):", "",
            "| call | p50 | p95 | p99 |", "|---|---:|---:|---:|",
            f"| `state_at` halfway | {Stats(**t['state_at_middle']).row()} |",
            f"| `state_at` at the end | {Stats(**t['state_at_end']).row()} |",
            f"| the Timeline page's slider (events cached per data version), halfway | "
            f"{Stats(**t['state_at_cached_events']).row()} |",
            f"| `run_diff` of one run | {Stats(**t['run_diff']).row()} |", ""]
    return out
