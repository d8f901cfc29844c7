"""A replayed conversation with changes of life, for the bundled model: the labelled change set
(``bench/data/changes.json``) told as real conversations, replayed through the pipeline and scored.

Eight users, each with five of the labelled changes (no two about the same thing). Each user first tells the old
state of each ("I live in Paris with two cats."), then chats about other things, then tells each change in the words
of the set ("Big news: I moved to Berlin last month!"), one exchange per session, the sessions dated months apart.
Every change is a question of kind ``update`` whose ``evidence`` is the change and ``old_evidence`` the old
statement, so ``evaluate`` scores stale memories.

``python -m bench.changes_replay write`` writes the eight files to ``data/bench/changes-replay/`` (ignored; the
same set gives the same files). ``python -m bench.changes_replay run [--reflect]`` replays them with the checkout it
runs from (the bundled model, a database of its own) and prints the figures as JSON: runs, failures, LLM calls and
seconds per exchange, evidence recall and the stale scores (after reflection too, with ``--reflect``).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .changes_set import load
from .common import RESULTS

FOLDER = RESULTS / "changes-replay"
USERS = 8

QUESTIONS = {
    "home": "Where does the user live?", "job": "What does the user do for work?",
    "relationship": "What is the user's relationship status?", "commute": "How does the user get to work?",
    "phone": "Which phone does the user have?", "diet": "What does the user eat and drink?",
    "car": "What car does the user drive?", "pets": "Does the user have a dog?",
    "smoking": "Does the user smoke?", "exercise": "What exercise does the user do?",
    "education": "Is the user a student?", "favourite_music": "What is the user's favourite band?",
    "medication": "What does the user take for diabetes?", "language_learning": "Which language is the user learning?",
    "computer": "What computer does the user use?", "bank": "Which bank does the user use?",
    "gym": "Is the user a gym member?", "children_school": "Which school does the user's son attend?",
    "sleep": "When does the user go to bed?", "workplace": "Where does the user work from?",
    "alcohol": "Does the user drink alcohol?", "weight": "How much does the user weigh?",
    "household": "Who does the user live with?", "pregnancy": "Is the user pregnant?",
    "work_hours": "Which shifts does the user work?",
}
BY_CONTENT = {
    "The user plans to visit Japan in April.": "Is the user going to Japan in April?",
    "The user plays the violin in an amateur orchestra.": "Does the user play in an orchestra?",
    "The user plays tennis every Saturday.": "Does the user play tennis?",
}
VERBS = {"lives": "live", "works": "work", "commutes": "commute", "loves": "love", "rents": "rent", "drives": "drive",
         "smokes": "smoke", "goes": "go", "drinks": "drink", "takes": "take", "plans": "plan", "uses": "use",
         "banks": "bank", "plays": "play", "weighs": "weigh", "has": "have", "is": "am", "does": "do"}


def first_person(memory: str) -> str:
    """"The user lives in Paris." → "I live in Paris."; "The user's son ..." → "My son ..."."""
    text = re.sub(r"^The user's ", "My ", memory)
    return re.sub(r"^The user (\w+)", lambda m: f"I {VERBS.get(m.group(1), m.group(1))}", text)


def split_users(pairs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The changes dealt to :data:`USERS` users so that no user has two changes about the same thing."""
    users: list[list[dict[str, Any]]] = [[] for _ in range(USERS)]
    for pair in pairs:
        subject = pair["old"]["subject"]
        target = next(u for u in sorted(users, key=len)
                      if subject is None or subject not in {p["old"]["subject"] for p in u})
        target.append(pair)
    return users


def conversations(data: dict[str, Any]) -> list[dict[str, Any]]:
    changes = [p for p in data["pairs"] if p["kind"] == "change"]
    chatter = [d["content"] for d in data["distractors"] if d["content"].startswith("In ")]
    start = datetime(2024, 1, 8, 10, tzinfo=UTC)
    out = []
    for u, pairs in enumerate(split_users(changes)):
        sessions: list[dict[str, Any]] = []
        questions = []

        def session(text: str, reply: str, sid: str, sessions: list[dict[str, Any]] = sessions) -> None:
            when = start + timedelta(days=9 * len(sessions))
            sessions.append({"title": sid, "date": when.isoformat(), "messages": [
                {"id": f"{sid}-u", "role": "user", "content": text},
                {"id": f"{sid}-a", "role": "assistant", "content": reply}]})

        for i, pair in enumerate(pairs):
            session(first_person(pair["old"]["content"]), "Good to know, thanks for telling me!", f"old{i}")
        for i, line in enumerate(chatter[u * 5:(u + 1) * 5]):
            session(re.sub(r"\bthe user\b", "I", line), "That sounds lovely!", f"chat{i}")
        for i, pair in enumerate(pairs):
            session(pair["message"], "Thanks for the update!", f"new{i}")
            question = QUESTIONS.get(pair["old"]["subject"] or "") or BY_CONTENT[pair["old"]["content"]]
            questions.append({"id": pair["id"], "question": question, "answer": pair["fact"]["content"],
                              "kind": "update", "evidence": [f"new{i}-u"], "old_evidence": [f"old{i}-u"],
                              "category": pair["old"]["subject"] or "other"})
        out.append({"sessions": sessions, "questions": questions})
    return out


def write() -> list[Path]:
    FOLDER.mkdir(parents=True, exist_ok=True)
    paths = []
    for u, conversation in enumerate(conversations(load())):
        path = FOLDER / f"user-{u}.json"
        path.write_text(json.dumps(conversation, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def run(reflect: bool, replay_first: bool = True, guard: bool = True) -> dict[str, Any]:
    """Replay every file with this checkout and the bundled model, then score it (and again after reflection).
    Without ``replay_first`` it only scores what an earlier replay (another checkout's, say) stored; without
    ``guard`` reflection may retire any memory it was shown (to measure what the guard keeps)."""
    from timemory import Settings, TiMem
    from timemory.core import ReflectionPolicy
    from timemory.lab import evaluate, load_dataset, replay

    tm = TiMem.from_settings(Settings())
    out: dict[str, Any] = {"users": []}
    for path in sorted(FOLDER.glob("user-*.json")):
        dataset = load_dataset(path, "timemory")
        prefix = f"{path.stem}-"
        started = time.perf_counter()
        report = replay(tm, dataset, user_prefix=prefix, limit=None if replay_first else 0)
        runs = tm.list_runs(user_id=prefix, limit=10_000)
        row: dict[str, Any] = {
            "user": prefix, "exchanges": report.processed, "failed": len(report.failed),
            "errors": sorted({e for _, _, e in report.failed}),
            "seconds_per_exchange": (time.perf_counter() - started) / max(report.processed, 1),
            "llm_calls_per_exchange": statistics.fmean(r.llm_calls for r in runs) if runs else 0.0,
            "prompt_tokens_per_exchange": statistics.fmean(r.prompt_tokens for r in runs) if runs else 0.0,
        }
        if hasattr(tm, "reflect"):  # the checkout measured before reflection existed cannot score stale memories
            scored = evaluate(tm, dataset, user_prefix=prefix, ks=[1, 5])
            stale = scored.stale.to_json() if scored.stale else None
            row.update(recall=scored.recall_at, recall_by_scope=scored.recall_by_scope, stale=stale,
                       active=scored.memories.active, memories=scored.memories.total)
            if reflect:
                policy = ReflectionPolicy() if guard else ReflectionPolicy(outdate_floor=None, merge_floor=None)
                reflection = tm.engine.reflect(user_id=prefix, policy=policy)
                again = evaluate(tm, dataset, user_prefix=prefix, ks=[1, 5])
                row.update(reflection=reflection.model_dump(exclude={"runs"}), recall_after=again.recall_at,
                           stale_after=again.stale.to_json() if again.stale else None,
                           active_after=again.memories.active)
        out["users"].append(row)
        print(json.dumps(row), flush=True)
    tm.close()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.changes_replay")
    parser.add_argument("command", choices=["write", "run", "score"])
    parser.add_argument("--reflect", action="store_true")
    parser.add_argument("--no-guard", action="store_true", help="reflection without the guard on what may change")
    parser.add_argument("--out", help="write the figures to this JSON file")
    args = parser.parse_args()
    if args.command == "write":
        print("\n".join(str(p) for p in write()))
    else:
        result = run(args.reflect, replay_first=args.command == "run", guard=not args.no_guard)
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=1))
