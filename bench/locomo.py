"""Retrieval on LoCoMo's real conversations, at turn and session level (report §12).

``python -m bench --only locomo [--locomo PATH]`` (or ``TIMEMORY_LOCOMO=PATH``) reads a LoCoMo file in the dataset's
own format; without one it says so and skips. The file is never copied anywhere: its figures are written, its text
is not.

Each conversation becomes one user holding both people's messages (each with its speaker's name), stored two ways:

- **turns**: one memory per message, "Name: text" (``tm.add``), searched in the memories (hybrid);
- **messages**: the messages stored as a replay stores them, with nothing learnt from them (``tm.save_messages``),
  searched with ``scope="episodes"`` (hybrid), with the message-search levers off and with each one on.

Questions of categories 1–4 are scored (5, adversarial, has no answer to find) by :func:`timemory.lab.evaluate`:
turn level recall@1/5/10, all-evidence recall@10, MRR, NDCG@10; session level recall@5/10; 95% bootstrap intervals.
Lever weights are chosen on ``TUNED_ON`` and reported on the other conversations.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import machine

TUNED_ON = ("conv-44", "conv-47")
SCORED_CATEGORIES = ("1", "2", "3", "4")
CATEGORY_NAMES = {"1": "multi-hop", "2": "temporal", "3": "open-domain", "4": "single-hop"}
KS = (1, 5, 10)
# Each lever alone on the tuning conversations, at these strengths; the best of each is reported.
GRID: dict[str, tuple[float, ...]] = {"speakers": (0.1, 0.2, 0.3, 0.45, 0.6),
                                      "neighbours": (0.35, 0.5, 0.7, 0.85, 1.0), "expansion": (0.1, 0.2, 0.5)}
# A lever is kept only when its best strength beats the levers off by this much recall@10 on the tuning set:
# one question in a hundred, less than that is noise on a few hundred questions.
MIN_GAIN = 0.01


def locomo_file(path: str | None = None) -> Path | None:
    """The LoCoMo file named on the command line or in ``TIMEMORY_LOCOMO``, when it exists."""
    named = path or os.environ.get("TIMEMORY_LOCOMO")
    return Path(named) if named and Path(named).is_file() else None


def load(path: Path) -> Any:
    """The dataset with one user per conversation (speaker a's side: both people's messages are in it) and only the
    scored questions."""
    from timemory.lab import load_dataset

    data = load_dataset(path, "locomo", speaker="a")
    for conv in data.conversations:
        conv.questions = [q for q in conv.questions if q.category in SCORED_CATEGORIES and q.evidence]
    return data


def subset(data: Any, groups: tuple[str, ...] | list[str]) -> Any:
    return dataclasses.replace(data, conversations=[c for c in data.conversations if c.group in groups])


def store_turns(tm: Any, data: Any, prefix: str) -> None:
    """One memory per message, "Name: text", dated with its session and linked to its message."""
    for conv in data.conversations:
        user = data.user_id(prefix, conv)
        for session in conv.sessions:
            for m in session.messages:
                tm.add(f"{m.name}: {m.content}", user_id=user, type="activity", source_message_ids=[m.id],
                       created_at=m.created_at)


def store_messages(tm: Any, data: Any, prefix: str) -> None:
    """Every message saved in its dated session, nothing learnt; then one search embeds them all."""
    for conv in data.conversations:
        user = data.user_id(prefix, conv)
        for session in conv.sessions:
            chat = tm.sessions.create(user_id=user, title=session.title, created_at=session.date)
            tm.save_messages([m.as_message() for m in session.messages], user_id=user, session_id=chat.id)
        tm.search("warm", user_id=user, limit=1, scope="episodes")  # embeds up to the per-search batch
        while tm.search("warm", user_id=user, limit=1, scope="episodes") and not embedded(tm, user):
            pass


def embedded(tm: Any, user: str) -> bool:
    return tm.engine.episodes.entry(user, tm.engine.embed_checked).unembedded == 0


def scores(tm: Any, data: Any, prefix: str, scope: str) -> dict[str, Any]:
    """Per conversation, per category and over the conversations given: the figures of :func:`figures`."""
    from timemory.lab import evaluate

    result = evaluate(tm, data, user_prefix=prefix, ks=KS, scope=scope)  # type: ignore[arg-type]
    out = {"all": figures(result), "per_category": {c: figures(s) for c, s in result.per_category.items()},
           "per_conversation": {}}
    for conv in data.conversations:
        one = evaluate(tm, subset(data, [conv.group]), user_prefix=prefix, ks=KS, scope=scope)  # type: ignore[arg-type]
        out["per_conversation"][conv.group] = figures(one)
    return out


def figures(s: Any) -> dict[str, Any]:
    return {"n": s.scored_questions, "recall_at": s.recall_at, "recall_ci": s.recall_ci, "mrr": s.mrr,
            "ndcg_at_10": s.ndcg_at.get("10"), "all_evidence_at_10": s.all_evidence_recall_at.get("10"),
            "session_at": s.session_recall_at}


def tune(tm: Any, data: Any, prefix: str, tuned_on: tuple[str, ...] = TUNED_ON) -> dict[str, Any]:
    """Each lever alone at each strength of ``GRID`` on the tuning conversations, by recall@10 then MRR; a lever's
    best strength is chosen when it gains ``MIN_GAIN`` recall@10 over the levers off."""
    from timemory.lab import evaluate
    from timemory.search import EpisodeLevers

    tuning = subset(data, tuned_on)
    off = evaluate(tm.variant(levers=EpisodeLevers()), tuning, user_prefix=prefix, ks=KS, scope="episodes")
    rows: dict[str, list[dict[str, Any]]] = {"off": [{"value": 0.0, "recall_at_10": off.recall_at["10"],
                                                       "mrr": off.mrr}]}
    best: dict[str, float] = {}
    for lever, values in GRID.items():
        rows[lever] = []  # kept only if it beats the levers off
        for value in values:
            variant = tm.variant(levers=EpisodeLevers(**{lever: value}))
            r = evaluate(variant, tuning, user_prefix=prefix, ks=KS, scope="episodes")
            rows[lever].append({"value": value, "recall_at_10": r.recall_at["10"], "mrr": r.mrr})
        top = max(rows[lever], key=lambda row: (row["recall_at_10"], row["mrr"]))
        if top["recall_at_10"] >= rows["off"][0]["recall_at_10"] + MIN_GAIN:
            best[lever] = top["value"]
    return {"rows": rows, "best": best}


def search_ms(tm: Any, data: Any, prefix: str, repeat: int = 3) -> float:
    """Median milliseconds of one episode search over the scored questions (the user's index cached)."""
    import statistics

    took = []
    for conv in data.conversations:
        user = data.user_id(prefix, conv)
        for q in conv.questions[:60]:
            for _ in range(repeat):
                started = time.perf_counter()
                tm.search(q.question, user_id=user, limit=10, scope="episodes")
                took.append(time.perf_counter() - started)
    return round(statistics.median(took) * 1000, 2) if took else 0.0


def measure(path: Path | None = None, *, tuned_on: tuple[str, ...] = TUNED_ON) -> dict[str, Any]:
    """Every system and lever on the file at ``path`` (or the one :func:`locomo_file` finds); ``{"skipped": why}``
    when there is none."""
    from timemory import TiMem
    from timemory.providers import LocalEmbedder
    from timemory.search import DEFAULT_LEVERS, EpisodeLevers
    from timemory.store import Store

    path = path if path is not None else locomo_file()
    if path is None or not path.is_file():
        return {"skipped": "no LoCoMo file: pass --locomo PATH or set TIMEMORY_LOCOMO"}
    data = load(path)
    held_out = tuple(c.group for c in data.conversations if c.group not in tuned_on)
    groups = held_out or tuple(c.group for c in data.conversations)
    folder = tempfile.mkdtemp(prefix="bench-locomo-")
    embedder = LocalEmbedder()
    store = Store.from_url(f"sqlite:///{folder}/locomo.db", embedding_model=embedder.name, embedding_dim=embedder.dim)
    tm = TiMem(store, embedder)
    started = time.perf_counter()
    store_turns(tm, data, "turns-")
    store_messages(tm, data, "msgs-")
    stored_s = time.perf_counter() - started
    tuning = tune(tm, data, "msgs-", tuned_on) if set(tuned_on) & {c.group for c in data.conversations} else {
        "rows": {}, "best": {lever: values[0] for lever, values in GRID.items()}}
    chosen = tuning["best"]
    report = subset(data, held_out) if held_out else data
    off = tm.variant(levers=EpisodeLevers())
    systems: dict[str, Any] = {
        "turns": scores(tm, report, "turns-", "memories"),
        "messages, levers off": scores(off, report, "msgs-", "episodes"),
    }
    for lever, value in chosen.items():
        systems[f"messages + {lever} {value:g}"] = scores(tm.variant(levers=EpisodeLevers(**{lever: value})),
                                                           report, "msgs-", "episodes")
    together = EpisodeLevers(**chosen)
    if len(chosen) > 1:
        systems["messages + the tuned levers together"] = scores(tm.variant(levers=together), report, "msgs-",
                                                                 "episodes")
    default = dataclasses.asdict(DEFAULT_LEVERS)
    if together != DEFAULT_LEVERS:
        systems["messages, default levers"] = scores(tm, report, "msgs-", "episodes")
    speed = {"off": search_ms(off, report, "msgs-"), "tuned": search_ms(tm.variant(levers=together), report,
                                                                        "msgs-")}
    store.close()
    return {"file": path.name, "questions": sum(len(c.questions) for c in data.conversations),
            "messages": sum(c.message_count for c in data.conversations), "tuned_on": list(tuned_on),
            "reported_on": list(held_out), "conversations": list(groups), "stored_s": round(stored_s, 1),
            "tuning": tuning, "systems": systems,
            "search_ms": speed, "chosen": chosen, "default_levers": default, "machine": machine()}


def tiny_file(folder: Path) -> Path:
    """A two-person conversation of our own in LoCoMo's shape (for the smoke run and the tests)."""
    turns1 = [("Ana", "I adopted a grey cat last week."), ("Ben", "Nice! What is its name?"),
              ("Ana", "Her name is Misty."), ("Ben", "I started learning the cello.")]
    turns2 = [("Ben", "My cello teacher moved to Lisbon."), ("Ana", "Misty knocked over my plant.")]

    def session(turns: list[tuple[str, str]], n: int) -> list[dict[str, str]]:
        return [{"speaker": s, "dia_id": f"D{n}:{i + 1}", "text": t} for i, (s, t) in enumerate(turns)]

    sample = {"sample_id": "conv-tiny", "conversation": {
        "speaker_a": "Ana", "speaker_b": "Ben", "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": session(turns1, 1), "session_2_date_time": "10:00 am on 20 May, 2023",
        "session_2": session(turns2, 2)},
        "qa": [{"question": "What is the name of Ana's cat?", "answer": "Misty", "evidence": ["D1:3"], "category": 4},
               {"question": "What instrument does Ben learn?", "answer": "cello", "evidence": ["D1:4"],
                "category": 1},
               {"question": "Where did Ben's teacher move?", "answer": "Lisbon", "evidence": ["D2:1"],
                "category": 2},
               {"question": "What is Ben's dog called?", "adversarial_answer": "none", "evidence": [],
                "category": 5}]}
    path = folder / "tiny-locomo.json"
    path.write_text(json.dumps([sample]))
    return path


def _cell(f: dict[str, Any], key: str, k: str | None = None) -> str:
    value = f[key][k] if k is not None else f[key]
    return "–" if value is None else f"{value:.2f}"


def table(systems: dict[str, Any], part: str = "all") -> list[str]:
    out = ["| system | n | R@1 | R@5 | R@10 (95% CI) | all-evidence R@10 | MRR | NDCG@10 | session R@5 | "
           "session R@10 |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in systems.items():
        f = s[part]
        lo, hi = f["recall_ci"]["10"]
        out.append(f"| {name} | {f['n']} | {_cell(f, 'recall_at', '1')} | {_cell(f, 'recall_at', '5')} | "
                   f"{_cell(f, 'recall_at', '10')} ({lo:.2f}–{hi:.2f}) | {_cell(f, 'all_evidence_at_10')} | "
                   f"{_cell(f, 'mrr')} | {_cell(f, 'ndcg_at_10')} | {_cell(f, 'session_at', '5')} | "
                   f"{_cell(f, 'session_at', '10')} |")
    return out


def section(r: dict[str, Any]) -> list[str]:
    head = ["## 12. Retrieval on LoCoMo conversations", ""]
    if "skipped" in r:
        return head + [f"Not measured: {r['skipped']}.", ""]
    tuning = r["tuning"]
    out = head + [
        f"`python -m bench --only locomo --locomo {r['file']}` on {r['machine']['date']}: {r['questions']} questions "
        f"of categories 1–4 over {r['messages']:,} messages of LoCoMo (Maharana et al., ACL 2024; CC BY-NC 4.0; "
        "read from the file, never copied). Each conversation is one user holding both people's messages with their "
        "names. *turns*: one memory per message (\"Name: text\", `tm.add`), hybrid search of the memories. "
        "*messages*: the messages stored as a replay stores them, nothing learnt (`tm.save_messages`), hybrid "
        "`scope=\"episodes\"`. A hit is a turn (message or memory) that holds the answer; a session hit is any "
        "result from a session that holds one. Intervals: 95% bootstrap over questions (seed 0).", "",
        (f"Lever strengths were chosen on {', '.join(r['tuned_on'])} (each lever alone, by recall@10; a lever is kept "
         f"only when it gains at least {MIN_GAIN:g} over the levers off) and every "
         f"figure below is on the conversations not tuned on: **{', '.join(r['reported_on'])}**." if r["reported_on"]
         else "Every conversation was tuned on: these figures are not held apart."), ""]
    out += table(r["systems"])
    out += ["", "Per conversation, recall@10 and session R@5:", "",
            "| system | " + " | ".join(r["conversations"]) + " |", "|---|" + "---:|" * len(r["conversations"])]
    for name, s in r["systems"].items():
        per = s["per_conversation"]
        cells = [f"{per[g]['recall_at']['10']:.2f} / {per[g]['session_at']['5']:.2f}" for g in r["conversations"]
                 if g in per]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out += ["", "Per category (recall@10):", "", "| system | " + " | ".join(
        f"{CATEGORY_NAMES.get(c, c)} ({c})" for c in SCORED_CATEGORIES) + " |", "|---|" + "---:|" * 4]
    for name, s in r["systems"].items():
        cells = [f"{s['per_category'][c]['recall_at']['10']:.2f}" if c in s["per_category"] else "–"
                 for c in SCORED_CATEGORIES]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    if tuning["rows"]:
        out += ["", f"Tuning on {', '.join(r['tuned_on'])} (recall@10 / MRR of each lever alone):", ""]
        for lever, rows in tuning["rows"].items():
            out.append(f"- {lever}: " + ", ".join(f"{row['value']:g} → {row['recall_at_10']:.3f} / {row['mrr']:.3f}"
                                                  for row in rows))
        dropped = [lever for lever in tuning["rows"] if lever != "off" and lever not in r["chosen"]]
        out += ["", f"Not kept (no strength gained {MIN_GAIN:g} recall@10 on the tuning set): "
                + (", ".join(dropped) or "none") + "."]
        left_off = [lever for lever in r["chosen"] if not r["default_levers"].get(lever)]
        if left_off:
            base = r["systems"]["messages, levers off"]["all"]["session_at"]["5"]
            notes = [f"{lever} (session R@5 {base:.2f} → "
                     f"{r['systems'][name]['all']['session_at']['5']:.2f} here)" for lever in left_off
                     if (name := f"messages + {lever} {r['chosen'][lever]:g}") in r["systems"]]
            out += ["", "Chosen on the tuning set but off by default: " + ", ".join(notes or left_off)
                    + "; why is noted at `DEFAULT_LEVERS` in `timemory/search/_episodes.py`."]
    speed = r["search_ms"]
    out += ["", f"One message search (`scope=\"episodes\"`, k = 10, cached index, median over the questions): "
            f"{speed['off']:.2f} ms with the levers off, {speed['tuned']:.2f} ms with the tuned ones on "
            f"({', '.join(f'{k} {v:g}' for k, v in r['chosen'].items()) or 'none'}; the query's embedding included). "
            f"Defaults of `EpisodeLevers` when this ran: "
            f"{', '.join(f'{k} {v:g}' for k, v in r['default_levers'].items())}. "
            f"Storing both systems (embedding every message twice) took {r['stored_s']:.0f} s.", ""]
    return out
