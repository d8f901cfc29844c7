"""Synthetic but realistic memories: many users' worth of facts of all six types, embedded once and cached."""

from __future__ import annotations

import itertools
import random

import numpy as np

from .common import RESULTS

SUBJECTS = {
    "personal": ["lives in {place}", "grew up in {place}", "has a {relative} called {name}",
                 "moved to {place} in {year}", "shares a flat in {place} with {name}", "has a {pet} named {name}"],
    "preference": ["prefers {food} over {food2}", "loves {genre} music", "dislikes {food}", "enjoys {hobby} on {day}s",
                   "likes reading {genre2} novels", "prefers {drink} in the morning"],
    "activity": ["goes {hobby} every {day}", "started {hobby} lessons in {month}",
                 "runs {km} km on {day}s", "volunteers at a {place2} in {place}", "is learning {language}",
                 "plays {sport} with {name}"],
    "plan": ["plans to visit {place} in {month}", "wants to run a marathon in {year}",
             "is saving for a trip to {place}", "intends to learn {language} before {month}",
             "will start a new job in {month}", "hopes to adopt a {pet} next {season}"],
    "health": ["is allergic to {food}", "has {condition}", "takes {med} every morning", "sleeps badly since {month}",
               "avoids {food} for health reasons", "had knee surgery in {year}"],
    "professional": ["works as a {job} in {place}", "is a {job} at a {company}", "manages a team of {km} people",
                     "is studying to become a {job}", "freelances as a {job}", "changed jobs to become a {job}"],
}
SLOTS = {
    "place": ["Lisbon", "Nairobi", "Osaka", "Porto", "Leeds", "Quito", "Tallinn", "Perth", "Montreal", "Cork",
              "Bergen", "Seville", "Hanoi", "Austin", "Kraków", "Accra", "Lyon", "Busan", "Valparaíso", "Ghent"],
    "relative": ["sister", "brother", "daughter", "son", "cousin", "grandmother", "partner", "nephew"],
    "name": ["Ana", "Kofi", "Yuki", "Liam", "Zara", "Mateo", "Ines", "Omar", "Priya", "Lars", "Chen", "Noor"],
    "year": [str(y) for y in range(2015, 2029)],
    "pet": ["dog", "cat", "parrot", "rabbit", "tortoise"],
    "food": ["peanuts", "shellfish", "gluten", "dairy", "coriander", "mushrooms", "spicy food", "olives"],
    "food2": ["rice", "pasta", "bread", "salad", "soup", "curry"],
    "genre": ["jazz", "techno", "folk", "classical", "hip-hop", "fado", "k-pop", "blues"],
    "genre2": ["crime", "science fiction", "historical", "fantasy", "poetry"],
    "hobby": ["climbing", "sailing", "pottery", "birdwatching", "cycling", "baking", "chess", "swimming"],
    "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "drink": ["green tea", "espresso", "oat latte", "mate", "chai"],
    "month": ["January", "March", "May", "July", "September", "November"],
    "km": [str(k) for k in (3, 5, 8, 10, 12, 15, 21)],
    "place2": ["food bank", "animal shelter", "library", "community garden", "youth club"],
    "language": ["Spanish", "Japanese", "Swahili", "German", "Portuguese", "Korean", "Arabic"],
    "sport": ["tennis", "badminton", "football", "volleyball", "table tennis"],
    "season": ["spring", "summer", "autumn", "winter"],
    "condition": ["asthma", "type 1 diabetes", "migraines", "hay fever", "a lactose intolerance"],
    "med": ["vitamin D", "an inhaler", "iron tablets", "insulin"],
    "job": ["nurse", "data engineer", "teacher", "architect", "chef", "pharmacist", "translator", "electrician"],
    "company": ["hospital", "start-up", "school", "bank", "museum", "newspaper"],
}
TAILS = ["", "", " and talks about it often", " since last year", " with friends", " when the weather allows",
         ", according to {name}", " (mentioned in {month})", ", which matters to them"]


def sentences(n: int, seed: int = 7) -> list[tuple[str, str]]:
    """``n`` distinct (content, type) pairs, the same for the same seed."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    types = list(SUBJECTS)
    for i in itertools.count():
        if len(out) >= n:
            break
        kind = types[i % len(types)]
        pattern = rng.choice(SUBJECTS[kind]) + rng.choice(TAILS)
        if rng.random() < 0.6:  # many real memories join two facts: "... and ..."
            pattern += " and " + rng.choice(SUBJECTS[rng.choice(types)]).replace("{", "{b_").replace("b_b_", "b_")
        values = {k: rng.choice(v) for k, v in SLOTS.items()} | {f"b_{k}": rng.choice(v) for k, v in SLOTS.items()}
        text = "The user " + pattern.format(**values) + "."
        if text not in seen:
            seen.add(text)
            out.append((text, kind))
    return out


QUERIES = ["Where does the user live?", "What food should I avoid cooking for them?", "What sport do they play?",
           "Which languages are they learning?", "What is their job?", "Any travel plans?", "Do they have pets?",
           "What music do they like?", "Health problems?", "Who is in their family?",
           "Kofi", "What happened in Lisbon?", "marathon in 2026", "allergic to peanuts", "Does anyone play tennis?"]


def embedded(n: int, embedder) -> tuple[list[tuple[str, str]], np.ndarray]:  # type: ignore[no-untyped-def]
    """The first ``n`` sentences and their vectors. Sizes share one cache under data/bench/: smaller corpora are
    prefixes of bigger ones (same seed), so the biggest embedding done so far serves them all."""
    texts = sentences(n)
    stem = f"corpus-{embedder.name.replace('/', '_')}"
    for path in sorted(RESULTS.glob(f"{stem}-*.npy"), key=lambda p: int(p.stem.rsplit("-", 1)[1])):
        if int(path.stem.rsplit("-", 1)[1]) >= n:
            vectors = np.load(path, mmap_mode="r")[:n]
            if vectors.shape == (n, embedder.dim):
                return texts, np.array(vectors, dtype=np.float32)
    vectors = _embed_all([t for t, _ in texts], embedder)
    RESULTS.mkdir(parents=True, exist_ok=True)
    np.save(RESULTS / f"{stem}-{n}.npy", vectors.astype(np.float32))
    return texts, vectors


def _embed_all(texts: list[str], embedder) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Setup, not a measured figure: a large batch job on an otherwise idle box is ~1.7× faster on every core."""
    import os

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        return np.vstack([embedder.embed(texts[i:i + 2048]) for i in range(0, len(texts), 2048)])
    finally:
        torch.set_num_threads(threads)


def load_into(store, user: str, texts: list[tuple[str, str]], vectors: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    """Store the corpus as one user's memories with their precomputed vectors, 5,000 per transaction."""
    from timemory.store import AddMemory

    for i in range(0, len(texts), 5_000):
        store.memories.apply(user, [AddMemory(content=c, type=t, embedding=v, actor="user")
                           for (c, t), v in zip(texts[i:i + 5_000], vectors[i:i + 5_000], strict=True)])
