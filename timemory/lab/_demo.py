"""A hand-written demo set: three users, a few dated sessions each, memories of all six types, some outdated by
what replaced them. It is built by replaying the conversations through the real pipeline, each session on its own
date, with the model's answers written by hand (:mod:`timemory.lab._demo_model`): runs, traces, diffs and outdating
are all there on first open, with no model reachable. ``demo_dataset`` replays it with any model (the dashboard's
"replay the demo with the configured model")."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from timemory._facade import TiMem
from timemory.lab._datasets import Conversation, Dataset, DatasetMessage, DatasetSession
from timemory.lab._demo_model import ScriptedDemoModel
from timemory.lab._replay import replay

DemoUser = dict[str, Any]

# Each session: title, days ago, messages (user, assistant, ...), and what was learnt from it.
# A learnt item is (content, type), or (content, type, "replaces", earlier content),
# or (content, type, "merges", earlier content).
DEMO: dict[str, list[dict[str, Any]]] = {
    "maya": [
        {
            "title": "Moving to Lisbon",
            "days_ago": 120,
            "messages": [
                "Hi! I'm Maya. I live in Amsterdam and work as a UX designer at a fintech startup.",
                "Nice to meet you, Maya! How can I help today?",
                "I'm vegetarian and I'm trying to find good lunch spots near Westerpark.",
                "Here are a few vegetarian-friendly places near Westerpark you could try…",
            ],
            "learnt": [
                ("The user's name is Maya.", "personal"),
                ("The user lives in Amsterdam.", "personal"),
                ("The user works as a UX designer at a fintech startup.", "professional"),
                ("The user is vegetarian.", "preference"),
            ],
        },
        {
            "title": "Running plans",
            "days_ago": 75,
            "messages": [
                "I started running three times a week, mostly 5k along the canals.",
                "That's a great routine! Do you have a goal in mind?",
                "I want to run the Lisbon half marathon in October.",
                "A half marathon is a great target. Let's build up your long runs gradually.",
            ],
            "learnt": [
                ("The user runs 5 km three times a week.", "activity"),
                ("The user plans to run the Lisbon half marathon in October.", "plan"),
            ],
        },
        {
            "title": "Knee pain and the move",
            "days_ago": 20,
            "messages": [
                "Big news: I moved to Lisbon last month and joined a design agency there as lead designer.",
                "Congratulations on the move and the new role!",
                "My left knee hurts after long runs, so my physio said to stick to 10k for now.",
                "Sorry to hear that. Cycling or swimming can keep your fitness up while the knee recovers.",
                "I also became pescatarian, I eat fish again since living by the sea.",
                "That makes sense with Lisbon's seafood! Any dishes you want to try?",
            ],
            "learnt": [
                ("The user lives in Lisbon.", "personal", "replaces", "The user lives in Amsterdam."),
                ("The user works as lead designer at a design agency in Lisbon.", "professional", "replaces",
                 "The user works as a UX designer at a fintech startup."),
                ("The user has pain in the left knee after long runs; the physio limits runs to 10 km.", "health"),
                ("The user is pescatarian and eats fish again.", "preference", "replaces", "The user is vegetarian."),
                ("The user runs three times a week, 5 km along the canals, and now keeps runs under 10 km because "
                 "of knee pain.", "activity", "merges", "The user runs 5 km three times a week."),
            ],
        },
    ],
    "tomas": [
        {
            "title": "Espresso machine advice",
            "days_ago": 60,
            "messages": [
                "I'm Tomás, a backend engineer in Madrid. I drink way too much coffee.",
                "Hi Tomás! Coffee lover then — what are you brewing with?",
                "A cheap moka pot, but I want to buy a proper espresso machine under 600 euros.",
                "Under 600 euros there are good single-boiler options; here is what to look for…",
            ],
            "learnt": [
                ("The user's name is Tomás.", "personal"),
                ("The user works as a backend engineer in Madrid.", "professional"),
                ("The user drinks a lot of coffee.", "preference"),
                ("The user plans to buy an espresso machine for under 600 euros.", "plan"),
            ],
        },
        {
            "title": "Learning Japanese",
            "days_ago": 30,
            "messages": [
                "I practise Japanese on weekends and I'm going to Kyoto in April.",
                "Kyoto in April is cherry-blossom season. How far along is your Japanese?",
                "I finished the first Genki book. Also I bought the espresso machine, a Lelit.",
                "Well done on Genki I! Enjoy the Lelit — dial in the grind first.",
            ],
            "learnt": [
                ("The user studies Japanese on weekends and has finished the first Genki textbook.", "activity"),
                ("The user plans a trip to Kyoto in April.", "plan"),
                ("The user owns a Lelit espresso machine.", "personal", "replaces",
                 "The user plans to buy an espresso machine for under 600 euros."),
            ],
        },
        {
            "title": "Sleep",
            "days_ago": 5,
            "messages": [
                "My doctor says I should stop coffee after 2 pm because I sleep badly.",
                "That is common advice. Decaf or herbal tea in the afternoon can help.",
            ],
            "learnt": [
                ("The user sleeps badly and was told by a doctor to avoid coffee after 2 pm.", "health"),
            ],
        },
    ],
    "aisha": [
        {
            "title": "PhD and climbing",
            "days_ago": 45,
            "messages": [
                "I'm Aisha, a PhD student in marine biology in Plymouth, studying kelp forests.",
                "That sounds fascinating! What are you working on right now?",
                "Writing my second paper. On weekends I go bouldering, and I'm allergic to peanuts, btw.",
                "Good luck with the paper — and noted about the peanuts.",
            ],
            "learnt": [
                ("The user's name is Aisha.", "personal"),
                ("The user is a PhD student in marine biology in Plymouth, researching kelp forests.", "professional"),
                ("The user goes bouldering on weekends.", "activity"),
                ("The user is allergic to peanuts.", "health"),
            ],
        },
        {
            "title": "Conference trip",
            "days_ago": 10,
            "messages": [
                "I'll present at a conference in Bergen in June. I prefer trains over flying when I can.",
                "A train trip to Bergen is long but scenic. Want help planning the route?",
                "I switched from bouldering to sport climbing, I now climb outdoors on Dartmoor.",
                "Outdoor sport climbing on Dartmoor — nice progression!",
            ],
            "learnt": [
                ("The user will present at a conference in Bergen in June.", "plan"),
                ("The user prefers travelling by train rather than flying.", "preference"),
                ("The user does outdoor sport climbing on Dartmoor.", "activity", "replaces",
                 "The user goes bouldering on weekends."),
            ],
        },
    ],
}


DEMO_PATH = Path("demo")  # what the demo's dataset is called where experiments name their dataset


def demo_dataset(now: datetime | None = None, users: list[str] | None = None) -> Dataset:
    """The demo conversations as a dataset: one conversation per user, each session dated ``days_ago`` before
    ``now``, its messages a minute apart."""
    now = now or datetime.now(UTC)
    conversations = []
    for user_id, sessions in DEMO.items():
        if users is not None and user_id not in users:
            continue
        dated = []
        for n, sess in enumerate(sessions, 1):
            when = (now - timedelta(days=sess["days_ago"])).replace(second=0, microsecond=0)
            said = [DatasetMessage(id=f"demo-{user_id}-{n}-{i}", role="user" if i % 2 == 0 else "assistant",
                                   content=text, created_at=when + timedelta(minutes=i))
                    for i, text in enumerate(sess["messages"])]
            dated.append(DatasetSession(key=sess["title"], date=when, messages=said))
        conversations.append(Conversation(key=user_id, sessions=dated))
    digest = hashlib.sha256(repr(sorted(DEMO.items())).encode()).hexdigest()
    return Dataset(path=DEMO_PATH, format="timemory", sha256=digest, conversations=conversations)


def scripted_model() -> ScriptedDemoModel:
    return ScriptedDemoModel([s for sessions in DEMO.values() for s in sessions])


def seed_demo(tm: TiMem, *, users: list[str] | None = None, now: datetime | None = None) -> dict[str, int]:
    """Build the demo (skipping users who already have memories): each session replayed through the pipeline on its
    own date with the scripted answers, kept in the answer cache like a lab replay's. Returns memories per user."""
    todo = [u for u in DEMO if (users is None or u in users) and tm.count_memories(user_id=u) == 0]
    if not todo:
        return {}
    scripted = tm.variant(llm=scripted_model(), cache_answers=True)
    report = replay(scripted, demo_dataset(now, todo), user_prefix="", granularity="session")
    if report.failed:
        raise RuntimeError(f"The demo could not be built: {report.failed[0][2]}")
    return {u: tm.count_memories(user_id=u) for u in todo}

