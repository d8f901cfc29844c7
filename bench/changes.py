"""Changes that reach consolidation, on the labelled change set (``bench/data/changes.json``).

Each pair gets a user of its own holding the set's distractor memories and the pair's old memory. The pair's fact
is embedded and the pipeline's candidate look (``timemory.core._candidates``) runs under each policy, side by side:
counted are the changes whose old memory is shown to the model, how many memories a consolidation shows, and the
size of its prompt. Each policy runs twice: with subject keys (a model that gives them, on the fact and on the
memory it wrote earlier) and without (a model that leaves the optional field out).

``--model`` also runs every pair end to end through ``process_messages`` with the bundled local model under the old
and the new policy, counting what it did to the old memory (OUTDATE is right on a change, wrong on a non-change),
its calls and its prompt tokens.

``python -m bench.changes [--model]`` prints the figures; ``python -m bench --only changes`` writes the section.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from .changes_set import load
from .common import machine, pin_threads

POLICIES = ("nearest only (before)", "+ same type", "+ change look", "+ subject key", "all (default)")


def policies() -> dict[str, Any]:
    from timemory import CandidatePolicy

    before = CandidatePolicy.nearest_only()
    return {
        "nearest only (before)": before,
        "+ same type": CandidatePolicy(subject=0, change=0),
        "+ change look": CandidatePolicy(subject=0, same_type=0),
        "+ subject key": CandidatePolicy(same_type=0, change=0),
        "all (default)": CandidatePolicy(),
    }


def _store(folder: str):  # type: ignore[no-untyped-def]
    from timemory.providers import LocalEmbedder
    from timemory.store import Store

    embedder = LocalEmbedder()
    store = Store.from_url(f"sqlite:///{folder}/changes.db", embedding_model=embedder.name,
                           embedding_dim=embedder.dim)
    return store, embedder


def load_users(store: Any, embedder: Any, data: dict[str, Any], *, subjects: bool,
               prefix: str) -> dict[str, str]:
    """One user per pair: the distractors and the pair's old memory (with its subject key when ``subjects``).
    Returns pair id -> the old memory's id."""
    from timemory.store import AddMemory

    distractors = data["distractors"]
    vectors = embedder.embed([d["content"] for d in distractors])
    olds = embedder.embed([p["old"]["content"] for p in data["pairs"]])
    old_ids = {}
    for pair, old_vector in zip(data["pairs"], olds, strict=True):
        user = f"{prefix}{pair['id']}"
        ops = [AddMemory(content=d["content"], type=d["type"], embedding=v, actor="user")
               for d, v in zip(distractors, vectors, strict=True)]
        ops.append(AddMemory(content=pair["old"]["content"], type=pair["old"]["type"], embedding=old_vector,
                             actor="user", subject=pair["old"]["subject"] if subjects else None))
        changes = store.memories.apply(user, ops)
        old_ids[pair["id"]] = changes[-1].memory_id
    return old_ids


def candidate_look(data: dict[str, Any]) -> dict[str, Any]:
    """Per policy and with/without subject keys: changes whose old memory is shown, memories shown per
    consolidation, and the consolidation prompt's characters."""
    from timemory import ExtractedFact
    from timemory.core import find_candidates, number_candidates
    from timemory.search import build_search

    folder = tempfile.mkdtemp(prefix="bench-changes-")
    store, embedder = _store(folder)
    search = build_search(store)
    out: dict[str, Any] = {}
    for subjects in (True, False):
        prefix = "s-" if subjects else "n-"
        old_ids = load_users(store, embedder, data, subjects=subjects, prefix=prefix)
        facts = {p["id"]: ExtractedFact(content=p["fact"]["content"], type=p["fact"]["type"],
                                        subject=p["fact"]["subject"] if subjects else None) for p in data["pairs"]}
        vectors = dict(zip(facts, embedder.embed([f.content for f in facts.values()]), strict=True))

        for name, policy in policies().items():
            shown_old: dict[str, bool] = {}
            sizes, chars, seconds = [], [], []
            for pair in data["pairs"]:
                user = f"{prefix}{pair['id']}"
                started = time.perf_counter()
                similar = find_candidates(search, store, policy, user, [facts[pair["id"]]],
                                          vectors[pair["id"]][None, :], store.users.version(user))
                seconds.append(time.perf_counter() - started)
                short_ids, candidates = number_candidates(similar)
                shown_old[pair["id"]] = any(c.memory_id == old_ids[pair["id"]] for c in candidates)
                sizes.append(len(short_ids))
                chars.append(sum(len(m.content) + 16 for m in short_ids.values()))
            changes = [p["id"] for p in data["pairs"] if p["kind"] == "change"]
            same = [p["id"] for p in data["pairs"] if p["kind"] == "same"]
            out.setdefault(name, {})["subjects" if subjects else "no_subjects"] = {
                "changes_shown": sum(shown_old[i] for i in changes), "changes": len(changes),
                "missed": [next(p["fact"]["content"] for p in data["pairs"] if p["id"] == i)
                           for i in changes if not shown_old[i]],
                "same_shown": sum(shown_old[i] for i in same), "same": len(same),
                "shown_mean": statistics.fmean(sizes), "shown_max": max(sizes),
                "memory_chars_mean": statistics.fmean(chars),
                "look_ms_p50": statistics.median(seconds) * 1000,
            }
    store.close()
    return out


def end_to_end(data: dict[str, Any]) -> dict[str, Any]:
    """Every pair through ``process_messages`` with the bundled model, under the old and the new policy."""
    from timemory import CandidatePolicy, Settings, TiMem
    from timemory.wiring import build_llm

    folder = tempfile.mkdtemp(prefix="bench-changes-model-")
    store, embedder = _store(folder)
    settings = Settings(_env_file=None, openai_api_key=None, openai_base_url=None)  # type: ignore[call-arg]
    llm = build_llm(settings)
    out: dict[str, Any] = {}
    try:
        for name, policy in (("nearest only (before)", CandidatePolicy.nearest_only()),
                             ("all (default)", CandidatePolicy())):
            tm = TiMem(store, embedder, llm, candidates=policy)
            prefix = "b-" if "before" in name else "a-"
            old_ids = load_users(store, embedder, data, subjects=True, prefix=prefix)
            rows = []
            for pair in data["pairs"]:
                user = f"{prefix}{pair['id']}"
                started = time.perf_counter()
                result = tm.process_messages([{"role": "user", "content": pair["message"]}], user_id=user)
                old = store.memories.get(user, old_ids[pair["id"]])
                rows.append({"id": pair["id"], "kind": pair["kind"], "status": result.status,
                             "outdated": old.status == "outdated",
                             "shown": any(c.memory_id == old_ids[pair["id"]] for c in result.candidates),
                             "llm_calls": result.llm_calls, "prompt_tokens": result.prompt_tokens,
                             "seconds": time.perf_counter() - started})
            out[name] = summarise(rows)
    finally:
        close = getattr(llm, "close", None)
        if close:
            close()
        store.close()
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    changes = [r for r in rows if r["kind"] == "change"]
    same = [r for r in rows if r["kind"] == "same"]
    return {"changes": len(changes), "same": len(same),
            "changes_outdated": sum(r["outdated"] for r in changes),
            "changes_shown": sum(r["shown"] for r in changes),
            "false_outdates": sum(r["outdated"] for r in same),
            "failed": sum(r["status"] == "failed" for r in rows),
            "llm_calls_mean": statistics.fmean(r["llm_calls"] for r in rows),
            "llm_calls_max": max(r["llm_calls"] for r in rows),
            "prompt_tokens_mean": statistics.fmean(r["prompt_tokens"] for r in rows),
            "seconds_mean": statistics.fmean(r["seconds"] for r in rows)}


def measure(model: bool = False, pairs: int | None = None, distractors: int | None = None) -> dict[str, Any]:
    pin_threads()
    data = load()
    if pairs is not None:  # the smoke run: a few of each kind
        data = {**data, "pairs": ([p for p in data["pairs"] if p["kind"] == "change"][:pairs]
                                  + [p for p in data["pairs"] if p["kind"] == "same"][:pairs])}
    if distractors is not None:
        data = {**data, "distractors": data["distractors"][:distractors]}
    result: dict[str, Any] = {"machine": machine(), "distractors": len(data["distractors"]),
                              "pairs": len(data["pairs"]), "look": candidate_look(data)}
    if model:
        result["model"] = end_to_end(data)
    return result


def section(r: dict[str, Any]) -> list[str]:
    look = r["look"]
    first = next(iter(look.values()))["subjects"]
    out = ["## 9. Changes that reach consolidation", "",
           f"Measured on {r['machine']['date']}: {r['machine']['machine']}. The labelled change set "
           f"`bench/data/changes.json` (made by `bench/changes_set.py`): {first['changes']} hand-labelled life "
           f"changes (a move, a new job, a break-up, a new phone...) and {first['same']} look-alike non-changes, "
           f"each given to a user of its own who holds the pair's old memory among {r['distractors']} distractor "
           "memories (family, friends, trips and tastes in the same words). The pipeline's candidate look runs for "
           "the pair's fact; a change *reaches consolidation* when its old memory is among the memories shown to "
           "the model. \"With subject keys\": the model gave the fact and the old memory a subject key (`home`, "
           "`job`, `relationship`...); \"without\": it left the optional field out.", "",
           "| candidates | changes shown, with subject keys | without | memories shown per fact (mean / max) | "
           "their characters (mean) | look p50 ms |",
           "|---|---:|---:|---:|---:|---:|"]
    for name, v in look.items():
        s, n = v["subjects"], v["no_subjects"]
        out.append(f"| {name} | {s['changes_shown']}/{s['changes']} | {n['changes_shown']}/{n['changes']} | "
                   f"{s['shown_mean']:.1f} / {s['shown_max']} | {s['memory_chars_mean']:.0f} | "
                   f"{s['look_ms_p50']:.1f} |")
    default = look.get("all (default)", {}).get("no_subjects", {})
    if default.get("missed"):
        out += ["", "Changes the default still misses without subject keys: "
                + "; ".join(f"\"{m}\"" for m in default["missed"]) + "."]
    model = r.get("model")
    if model:
        out += ["", "End to end through `process_messages` with the bundled model (SmolLM2-135M-Instruct), each "
                "pair on a fresh user, under the old and the new candidates:", "",
                "| candidates | old memory shown | changes outdated | non-changes wrongly outdated | failed runs | "
                "LLM calls per exchange (mean / max) | prompt tokens per exchange | seconds per exchange |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, m in model.items():
            out.append(f"| {name} | {m['changes_shown']}/{m['changes']} | {m['changes_outdated']}/{m['changes']} | "
                       f"{m['false_outdates']}/{m['same']} | {m['failed']} | {m['llm_calls_mean']:.2f} / "
                       f"{m['llm_calls_max']} | {m['prompt_tokens_mean']:.0f} | {m['seconds_mean']:.1f} |")
    out += replay_section()
    out.append("")
    return out


REPLAY_RECORD = Path(__file__).resolve().parent / "data" / "changes_replay_measured.json"


def replay_section() -> list[str]:
    """The replayed conversation of changes (``bench/changes_replay.py``), before and after, from its record: the
    "before" side needs an older checkout, so it is measured by hand and kept, not re-run by ``make bench``."""
    if not REPLAY_RECORD.exists():
        return []
    r = json.loads(REPLAY_RECORD.read_text(encoding="utf-8"))
    out = ["", f"**A replayed conversation with these changes, before and after** (measured {r['date']}, "
           f"{r['machine']}). `bench/changes_replay.py` tells the 40 changes as the conversations of 8 users (each "
           "first says the old state, then chats, then tells the change; one exchange per session, sessions 9 days "
           f"apart: {r['exchanges']} exchanges) and replays them with the bundled model; each change is a question "
           "of kind `update`, scored by `evaluate`. *Before* is the checkout before the answers were bounded by "
           f"per-request schemas and before the candidate looks ({r['before_commit']}); *after* is this one. "
           "Reproduce: `python -m bench.changes_replay write`, then `python -m bench.changes_replay run --reflect` "
           "in each checkout (`score` scores an older checkout's replay with this one's `evaluate`; `score --reflect "
           "--no-guard` reflects without the guard on what may change).", "",
           "| | failed runs | LLM calls per exchange | prompt tokens per exchange | seconds per exchange | "
           "latest statement found @5 | stale memory returned @5 | stale memory active | evidence recall @5 |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in r["rows"]:
        out.append(f"| {row['name']} | {row['failed']} | {row['llm_calls']} | {row['prompt_tokens']} | "
                   f"{row['seconds']} | {row['latest']} | {row['stale_returned']} | {row['stale_active']} | "
                   f"{row['recall']} |")
    out += ["", r["note"]]
    if "scopes" in r:
        scopes = r["scopes"]
        out += ["", f"**What questions are searched in** (measured {scopes['date']}, same machine, a new replay of the "
                f"same conversations: {scopes['failed']}). Evidence recall of the same 40 questions when searched "
                "in the memories, in the stored messages (episodes: each found by its own words and meaning and by "
                "the memories learnt from it) and in both, one list by score (`evaluate`'s `recall_by_scope`):", "",
                "| scope | evidence recall @1 | @5 |", "|---|---:|---:|"]
        out += [f"| {row['scope']} | {row['1']:.2f} | {row['5']:.2f} |" for row in scopes["rows"]]
        out += ["", scopes["note"]]
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.changes")
    parser.add_argument("--model", action="store_true", help="also run every pair with the bundled model")
    args = parser.parse_args()
    print("\n".join(section(measure(model=args.model))))
