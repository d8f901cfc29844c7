"""Learning from plain self-statements: what the configured model (by default the bundled one) learns from one
message such as "I'm Sam, I live in Oslo and I work as a nurse.", each sent by a new user, as the Chat's "Try it"
does.

A statement counts as learnt when at least one memory stored from it holds one of its facts, told by the fact's
words (all words of one of its alternatives, as whole words of the memory's text). A memory that holds none of the
statement's facts is counted apart as unsupported. The check reads words, not meaning: it is strict where a word
alone would mislead (a negation, whose sister) and shown with its misses and unsupported memories.
"""

from __future__ import annotations

import re
import tempfile
import time
from math import sqrt
from pathlib import Path
from statistics import median
from typing import Any

from .common import machine, pin_threads

# (statement, facts). A fact is told by any of its alternatives; an alternative is words joined by "+", all of which
# must be in the memory as whole words ("horror+hate": a memory saying the user is a horror fan does not hold it).
# Written for this benchmark.
STATEMENTS: list[tuple[str, list[tuple[str, ...]]]] = [
    ("Hi! I'm Sam, I live in Oslo and I work as a nurse.", [("oslo",), ("nurse",), ("sam",)]),
    ("My name is Priya and I'm a software engineer.", [("priya",), ("software+engineer",)]),
    ("I live in Toronto with my husband.", [("toronto",), ("husband",)]),
    ("I'm allergic to peanuts.", [("peanut", "peanuts")]),
    ("I'm vegetarian and I don't eat fish either.", [("vegetarian",), ("fish+not", "fish+doesn", "fish+never")]),
    ("I have a dog called Biscuit.", [("biscuit+dog",)]),
    ("I play the cello in a community orchestra.", [("cello",), ("orchestra",)]),
    ("I run five kilometres every morning.", [("runs+kilometres", "run+kilometres", "running+kilometres",
                                               "runs+km", "runs+five")]),
    ("I'm training for the Berlin marathon in September.", [("marathon+berlin",)]),
    ("I work as a primary school teacher.", [("teacher",)]),
    ("I'm learning Japanese.", [("japanese",)]),
    ("I have type 1 diabetes.", [("diabetes", "diabetic")]),
    ("My favourite food is sushi.", [("sushi+loves", "sushi+love", "sushi+favourite", "sushi+favorite",
                                      "sushi+likes")]),
    ("I drink green tea, never coffee.", [("green+tea",), ("coffee+never", "coffee+not", "coffee+doesn")]),
    ("I'm moving to Lisbon next month.", [("lisbon",)]),
    ("I have two kids, Mia and Leo.", [("two+children", "two+kids", "children+mia", "kids+mia")]),
    ("I'm a night owl and usually sleep at 2am.", [("night+owl",), ("2am",)]),
    ("I go rock climbing on weekends.", [("climbing",)]),
    ("I hate horror films.", [("horror+hate", "horror+hates", "horror+dislike", "horror+dislikes", "horror+not")]),
    ("I'm a nurse at a children's hospital.", [("nurse",)]),
    ("I was born in Nairobi.", [("born+nairobi",)]),
    ("I drive an old blue Volvo.", [("volvo",)]),
    ("I'm planning a trip to Iceland in June.", [("iceland+trip", "iceland+planning", "iceland+plans")]),
    ("I've been vegan for three years.", [("vegan",)]),
    ("I speak Spanish and French.", [("speaks+spanish", "speak+spanish"), ("speaks+french", "speak+french")]),
    ("My sister lives in Sydney.", [("sister+sydney",)]),
    ("I started a new job at a bank last week.", [("bank+job", "bank+works", "bank+work", "bank+employee")]),
    ("I have a bad knee from an old football injury.", [("knee",)]),
    ("I love gardening, especially growing tomatoes.", [("gardening",), ("tomatoes",)]),
    ("I'm 34 years old.", [("34",)]),
    ("I study architecture at university.", [("architecture+studying", "architecture+studies",
                                              "architecture+study", "architecture+student")]),
    ("My partner is called Alex and we live in Glasgow.", [("alex+partner",), ("glasgow",)]),
]
FACTS = dict(STATEMENTS)


def holds(memory: str, fact: tuple[str, ...]) -> bool:
    """Whether ``memory`` says ``fact``: all words of one of its alternatives, as whole words."""
    words = set(re.findall(r"[a-z0-9]+", memory.lower()))
    return any(all(w in words for w in alternative.split("+")) for alternative in fact)


def score(row: dict[str, Any]) -> tuple[int, list[str]]:
    """(facts held by some memory, memories holding none of the statement's facts) for one measured statement."""
    facts = FACTS[row["statement"]]
    found = sum(1 for f in facts if any(holds(m, f) for m in row["memories"]))
    return found, [m for m in row["memories"] if not any(holds(m, f) for f in facts)]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson interval of a rate of ``k`` in ``n``."""
    if n == 0:
        return 0.0, 0.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# How the bundled model was set before: replies of up to 512 tokens, and extraction reading them.
BEFORE = {"max_reply_tokens": 512, "reply_sentence_after": None, "reads_replies": True}


def measure(statements: int | None = None,
            vias: tuple[str, ...] = ("process", "chat", "chat-before")) -> dict[str, Any]:
    """Each statement to a new user on the configured model (the bundled one unless OpenAI or another server is
    configured): through ``process_messages`` alone, and through the chat as "Try it" sends it (the reply streamed,
    then learning from the exchange) — as configured (``chat``) and, side by side, as the bundled model was set
    before (``chat-before``: replies of up to 512 tokens that end where the model stops, read by extraction)."""
    pin_threads()
    from timemory import Settings, TiMem

    chosen = STATEMENTS[:statements] if statements else STATEMENTS
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-statements-") as data_dir:
        tm = TiMem.from_settings(Settings(data_dir=Path(data_dir), database_url=None, _env_file=None))
        llm: Any = tm.llm
        limits = {name: getattr(llm, name, None) for name in BEFORE}  # as configured
        try:
            for via in vias:
                rows = results.setdefault(via, [])
                for name, value in (BEFORE if via == "chat-before" else limits).items():
                    setattr(llm, name, value)
                for i, (text, _) in enumerate(chosen):
                    user = f"{via}-{i}"
                    started = time.perf_counter()
                    row: dict[str, Any] = {"statement": text}
                    if via == "process":
                        row["status"] = tm.process_messages([{"role": "user", "content": text}], user_id=user).status
                    else:
                        session = tm.sessions.create(user_id=user)
                        exchange = tm.chat.chat_with_memory_stream(text, user_id=user, session_id=session.id)
                        reply = "".join(exchange)
                        row["reply_seconds"] = time.perf_counter() - started
                        exchange.wait(timeout=600)
                        row["status"] = exchange.pipeline.status if exchange.pipeline else "failed"
                        row["reply_chars"] = len(reply)
                    row["seconds"] = time.perf_counter() - started
                    row["memories"] = [m.content for m in tm.list_memories(user_id=user)]
                    rows.append(row)
                    print(f"{via}: {'learnt' if score(row)[0] else 'missed'}  {text}  →  {row['memories']}",
                          flush=True)
            model = tm.describe()["llm"]
        finally:
            tm.close()
    return {**machine(), "runs": results, "model": model, "reply_limits": limits}


VIAS = {"process": "`process_messages` (the message alone)",
        "chat": "chat, as \"Try it\" (reply, then learning)",
        "chat-before": "chat, as before (longer replies, read by extraction)"}


def section(data: dict[str, Any]) -> list[str]:
    runs = data["runs"]
    n = len(next(iter(runs.values()), []))
    out = ["## 13. Learning from plain statements", "",
           f"Measured on {data['date']} with `python -m bench --only statements`: {n} plain self-statements written "
           f"for this benchmark (`bench/statements.py`), each sent alone by a new user, model: {data['model']}. "
           "A statement is learnt when a stored memory holds one of its facts (told by the fact's words: all words "
           "of one of its alternatives, so `horror+hate` is not held by \"The user is a horror fan.\"); a memory that "
           "holds none of the statement's facts is counted as unsupported (made up, mangled, or a true fact worded "
           "outside the list). The check reads words, not meaning. The chat's replies: "
           f"{describe_limits(data.get('reply_limits') or {})}.", "",
           "| through | learnt | rate (95% interval) | memories | unsupported | failed runs | seconds to learnt, "
           "median / longest | reply characters, median / longest |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for via, rows in runs.items():
        scored = [(r, *score(r)) for r in rows]
        learnt = sum(1 for _, found, _ in scored if found)
        low, high = wilson(learnt, len(rows))
        memories = sum(len(r["memories"]) for r in rows)
        unsupported = sum(len(none) for _, _, none in scored)
        failed = sum(1 for r in rows if r["status"] == "failed")
        chars = (f"{median([r['reply_chars'] for r in rows]):.0f} / {max(r['reply_chars'] for r in rows)}"
                 if "reply_chars" in rows[0] else "—")
        seconds = [r["seconds"] for r in rows]
        out.append(f"| {VIAS.get(via, via)} | {learnt} of {len(rows)} | {learnt / max(len(rows), 1):.2f} "
                   f"({low:.2f}–{high:.2f}) | {memories} | {unsupported} | {failed} | "
                   f"{median(seconds):.1f} / {max(seconds):.1f} | {chars} |")
        missed = [r["statement"] for r, found, _ in scored if not found]
        if missed:
            notes.append(f"Missed through {via}: " + "; ".join(f"“{m}”" for m in missed[:10])
                         + ("; …" if len(missed) > 10 else "") + ".")
        examples = [f"“{u}” (from “{r['statement']}”)" for r, _, none in scored for u in none][:3]
        if examples:
            notes.append(f"Unsupported through {via}, for example: " + "; ".join(examples) + ".")
    return out + [""] + [line for note in notes for line in (note, "")]


def describe_limits(limits: dict[str, Any]) -> str:
    after, cap = limits.get("reply_sentence_after"), limits.get("max_reply_tokens")
    said = [f"end with the sentence under way after {after} tokens" if after else "end where the model stops",
            f"at most {cap} tokens" if cap else "no token cap",
            "extraction reads the reply too" if limits.get("reads_replies", True)
            else "extraction reads only the user's message"]
    return ", ".join(said)
