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

from .common import Stats, dashboard_engine, pin_threads, timed
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


def replay_throughput(folder: Path, sessions: int = 3) -> dict[str, Any]:
    from timemory import Settings, TiMem
    from timemory.lab import load_dataset, replay, units_of

    settings = Settings(_env_file=None, data_dir=folder, openai_api_key=None, openai_base_url=None)  # type: ignore[call-arg]
    tm = TiMem.from_settings(settings)
    assert tm.llm is not None
    dataset = load_dataset(dataset_file(folder, sessions), "locomo", speaker="a")
    "".join(tm.llm.stream([{"role": "user", "content": "Hello"}]))  # the server is started and warm before timing
    out: dict[str, Any] = {"exchanges": len(units_of(dataset, "x-")), "sessions": len(units_of(dataset, "x-",
                                                                                               "session"))}
    cached = tm.variant(cache_answers=True)  # one cache: the warm run reuses the cold run's answers
    for label, prefix, granularity, runner in (("per exchange", "ex-", "exchange", tm),
                                               ("per session", "se-", "session", tm),
                                               ("per exchange, cold cache", "c1-", "exchange", cached),
                                               ("per exchange, warm cache", "c2-", "exchange", cached)):
        print(f"  lab: replay {label}", flush=True)
        started = time.perf_counter()
        report = replay(runner, dataset, user_prefix=prefix, granularity=granularity)  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        runs = tm.list_runs(user_id=f"{prefix}bench-a", limit=1000)
        out[label] = {"runs": report.processed, "failed": len(report.failed), "seconds": round(seconds, 2),
                      "exchanges_per_min": round(out["exchanges"] / seconds * 60, 1),
                      "llm_calls": sum(r.llm_calls for r in runs),
                      "memories": len(tm.list_memories(user_id=f"{prefix}bench-a"))}
    out["cache_hits"] = getattr(cached.llm, "hits", 0)
    return out


def history(store: Any, user: str, memories: int, events: int) -> tuple[int, int]:
    """Fill ``user`` with ``memories`` memories and ``events`` events (adds, then edits and status changes mixed in,
    two per pipeline run, five minutes apart over a simulated year and more). Returns (runs, events written)."""
    import numpy as np

    from timemory import PipelineResult
    from timemory.store import AddMemory, ChangeMemory

    rng, pick = np.random.default_rng(7), random.Random(7)
    vec = rng.standard_normal(store.dim).astype(np.float32)
    types = ["personal", "preference", "activity", "plan", "health", "professional"]
    ids: list[str] = []
    written = n = 0
    while written < events:
        when = START + timedelta(minutes=5 * n)
        n += 1
        ops: list[AddMemory | ChangeMemory] = []
        for _ in range(min(2, events - written)):
            adds_left = memories - len(ids) - sum(isinstance(o, AddMemory) for o in ops)
            if len(ids) < 50 or pick.random() < adds_left / max(1, events - written - len(ops)):
                ops.append(AddMemory(content=f"Memory {n}-{len(ops)} about {pick.choice(PLACES)}",
                                     type=pick.choice(types), embedding=vec, created_at=when, actor="user"))
            else:
                ops.append(ChangeMemory(memory_id=ids[pick.randrange(len(ids))], content=f"Memory edited at {n}",
                                        embedding=vec, at=when, status=pick.choice(["active", "outdated"])))
        changes = store.memories.apply(user, ops, run_id=f"run-{n}")
        store.runs.save(PipelineResult(run_id=f"run-{n}", user_id=user, created_at=when,
                                      changes=list(changes)))
        ids += [c.memory_id for c in changes if c.event == "ADD"]
        written += len(changes)
    return n, written


START = datetime(2023, 1, 1, tzinfo=UTC)
PLACES = ["Lisbon", "Berlin", "Osaka", "Lyon", "Quito", "Accra", "Perth", "Oslo"]


def time_travel(tm: Any, user: str, runs: int, events: int) -> dict[str, Any]:
    """``state_at`` and ``run_diff`` over the user made by :func:`history`."""
    from timemory.core import EventLog

    middle, end = START + timedelta(minutes=5 * runs // 2), START + timedelta(minutes=5 * runs)
    log = EventLog(user, tm.events(user_id=user))  # what the Timeline page keeps per data version
    return {
        "state_at_cached_events": timed(lambda: log.state_at(middle), 10).__dict__,
        "diff_cached_events": timed(lambda: log.diff(f"run-{runs // 2}"), 30).__dict__,
        "load_events": timed(lambda: tm.events(user_id=user), 5, warmup=1).__dict__,
        "events": events, "memories": tm.count_memories(user_id=user), "runs": runs,
        "state_at_middle": timed(lambda: tm.state_at(middle, user_id=user), 10).__dict__,
        "state_at_end": timed(lambda: tm.state_at(end, user_id=user), 10).__dict__,
        "run_diff": timed(lambda: tm.run_diff(f"run-{runs // 2}", user_id=user), 30).__dict__,
    }


def experiments(store: Any, user: str, questions: int = 2_000) -> None:
    """Two evaluated experiments over ``user`` with ``questions`` scored questions each, in ``evaluate``'s shape
    (made up for size: the compare view draws what is stored, whatever produced it)."""
    from timemory import Experiment
    from timemory.lab import attribute, scores

    memories = store.memories.list(user, limit=200)
    for e, name in enumerate(("baseline", "variant")):
        pick = random.Random(e)
        out = []
        for q in range(questions):
            found = [pick.random() < 0.2 + 0.1 * e for _ in range(10)]
            out.append({
                "id": f"q{q}", "question": f"Question {q} about {pick.choice(PLACES)}?", "answer": "an answer",
                "category": q % 5 + 1, "evidence": [f"D1:{q}"],
                "hit_at": {str(k): any(found[:k]) for k in (1, 5, 10)},
                "evidence_learnt": any(found) or pick.random() < 0.5, "distractors": len(memories) - 1,
                "retrieved": [{"memory_id": m.id, "user_id": user, "content": m.content,
                               "score": round(pick.random(), 4), "evidence_hit": f}
                              for m, f in zip(pick.sample(memories, 10), found, strict=True)]})
        for q in out:
            q["attribution"] = attribute(q, 5)
        metrics = {**scores(out, (1, 5, 10), 5), "questions": out, "per_category": {
            str(c): scores([q for q in out if q["category"] == c], (1, 5, 10), 5) for c in range(1, 6)}}
        store.experiments.save(Experiment(
            id=f"bench-{name}", name=name, dataset_path="bench-dialogue.json", dataset_sha256="0" * 64,
            dataset_format="locomo", user_prefix="bench-", status="done", metrics=metrics,
            config={"llm_model": "SmolLM2-135M", "embedder": "all-MiniLM-L6-v2", "search_mode": "vector",
                    "granularity": "exchange"},
            counts={"exchanges": 5_882, "failed": 0, "llm_calls": 11_764 - 100 * e}))


def page_draws(tm: Any, user: str, runs: int, repeat: int = 5, questions: int = 2_000) -> dict[str, Any]:
    """Server-side time of the Timeline and Lab pages (Streamlit AppTest runs the real page scripts in-process):
    a first draw with empty caches, a slider move (events cached), and the compare view of two experiments."""
    from dashboard import adapter, state

    from .common import ROOT
    from .dashboard import _run

    def app(page: str) -> Any:
        from streamlit.testing.v1 import AppTest

        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=900)
        at.session_state[state.USER] = user
        at.run()
        at.switch_page(page)
        return at

    def cold() -> None:  # drops every cached read
        adapter.override(memory=tm, info={"database": "SQLite", "llm": "none", "embedder": "all-MiniLM-L6-v2"})

    out: dict[str, list[float]] = {"timeline_first": [], "timeline_slider": [], "timeline_rerun": [],
                                   "compare_first": [], "compare_question": []}
    try:
        for i in range(repeat):
            cold()
            at = app("pages/timeline.py")
            out["timeline_first"].append(_run(at))
            moment = START + timedelta(minutes=5 * runs * (i + 1) // (repeat + 2))
            at.slider(key=state.TIMELINE_AT).set_value(moment)
            out["timeline_slider"].append(_run(at))
            out["timeline_rerun"].append(_run(at))
            cold()
            at = app("pages/lab.py")
            out["compare_first"].append(_run(at))
            at.selectbox(key=state.LAB_QUESTION).set_value(f"q{(100 * (i + 1)) % questions}")
            out["compare_question"].append(_run(at))
            assert len(at.dataframe) == 4 and not at.exception  # what ran, recall, misses at k, the comparison
    finally:
        adapter.override()
    return {k: Stats.of(v).__dict__ for k, v in out.items()}


def measure(memories: int = 10_000, events: int = 20_000, sessions: int = 3, questions: int = 2_000,
            repeat: int = 5) -> dict[str, Any]:
    pin_threads()
    from timemory.providers import LocalEmbedder
    from timemory.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        out: dict[str, Any] = {"replay": replay_throughput(folder, sessions)}
        embedder = LocalEmbedder()
        store = Store.from_url(f"sqlite:///{folder}/time.db", embedding_model=embedder.name,
                               embedding_dim=embedder.dim)
        tm, user = dashboard_engine(store, embedder), "bench-time"
        print(f"  lab: a user with {memories:,} memories and {events:,} events", flush=True)
        runs, written = history(store, user, memories, events)
        experiments(store, user, questions)
        out["time_travel"] = time_travel(tm, user, runs, written)
        print("  lab: Timeline and Lab pages", flush=True)
        out["pages"] = page_draws(tm, user, runs, repeat, questions)
        return out


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
    out += ["", f"Time travel over one user with {t['memories']:,} memories and {t['events']:,} events in "
            f"{t['runs']:,} pipeline runs, SQLite, times in ms (p50 | p95 | p99):", "",
            "| call | p50 | p95 | p99 |", "|---|---:|---:|---:|",
            f"| `state_at` halfway (reads the events up to then) | {Stats(**t['state_at_middle']).row()} |",
            f"| `state_at` at the end | {Stats(**t['state_at_end']).row()} |",
            f"| `run_diff` of one run | {Stats(**t['run_diff']).row()} |",
            f"| load every event (what the Timeline page keeps per data version) | "
            f"{Stats(**t['load_events']).row()} |",
            f"| state halfway from the kept events | {Stats(**t['state_at_cached_events']).row()} |",
            f"| one run's diff from the kept events | {Stats(**t['diff_cached_events']).row()} |", ""]
    if pages := lab.get("pages"):
        out += ["Server-side time to draw the pages for that user (Streamlit AppTest runs the real page scripts "
                "in-process; includes AppTest's own overhead), and the Lab's compare view of two experiments with "
                "2,000 scored questions each (made up for size), in ms (p50 | p95 | p99):", "",
                "| page, action | p50 | p95 | p99 |", "|---|---:|---:|---:|"]
        for key, label in (("timeline_first", "Timeline, first draw (every cache empty)"),
                           ("timeline_slider", "Timeline, slider moved to a new moment"),
                           ("timeline_rerun", "Timeline, redrawn at the same moment"),
                           ("compare_first", "Lab compare view, first draw (every cache empty)"),
                           ("compare_question", "Lab compare view, another question picked")):
            out.append(f"| {label} | {Stats(**pages[key]).row()} |")
        out.append("")
    return out
