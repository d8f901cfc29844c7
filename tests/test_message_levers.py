"""Message search's levers, each on a small two-person conversation of our own where it must change the rank, and
their arithmetic on cases counted by hand; and speakers' names kept on messages."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from timemory import InvalidInputError, TiMem
from timemory.search import EpisodeLevers
from timemory.search._levers import expanded_query, named_in, with_neighbours

WHEN = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def said(tm: TiMem, user: str, turns: list[tuple[str, str]], title: str = "session_1") -> None:
    chat = tm.sessions.create(user_id=user, title=title, created_at=WHEN)
    tm.save_messages([{"id": f"{title}:{i}", "role": "user" if name == "Ana" else "assistant", "name": name,
                       "content": text, "created_at": WHEN} for i, (name, text) in enumerate(turns)],
                     user_id=user, session_id=chat.id)


def rank(tm: TiMem, user: str, query: str, message_id: str) -> int:
    hits = tm.search(query, user_id=user, limit=20, scope="episodes")
    return [h.id for h in hits].index(message_id) + 1


def test_a_named_speaker_counts_by_any_word_of_their_name_and_only_them() -> None:
    names = ["Ana Lima", "Ben", None, "Ben"]
    assert named_in("When did ana go to Lisbon?", names).tolist() == [True, False, False, False]
    assert named_in("What did Ben and Ana do?", names).tolist() == [True, True, False, True]
    assert named_in("Bent spoons?", names).tolist() == [False, False, False, False]  # a whole word, not a prefix


def test_neighbours_add_the_better_adjacent_score_within_a_session() -> None:
    scores = np.array([0.9, 0.1, 0.5, 0.2], np.float32)
    sessions = ["s1", "s1", "s1", "s2"]  # the last message is alone in its session
    out = with_neighbours(scores, sessions, 0.5)
    assert out.tolist() == pytest.approx([0.9 + 0.05, 0.1 + 0.45, 0.5 + 0.05, 0.2])


def test_expansion_moves_the_query_toward_the_first_pass_best_rows() -> None:
    query = np.array([1.0, 0.0], np.float32)
    matrix = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]], np.float32)
    moved = expanded_query(query, matrix, np.array([0.9, 0.1, 0.8]), EpisodeLevers(expansion=1.0, expansion_hits=2))
    # the two best rows are 0 and 2: mean (0.3, 0.9); query + mean = (1.3, 0.9), made unit
    assert moved.tolist() == pytest.approx((np.array([1.3, 0.9]) / np.hypot(1.3, 0.9)).tolist(), abs=1e-6)


def test_the_speakers_lever_puts_the_named_person_s_message_first(sqlite_store, embedder, user) -> None:
    tm = TiMem(sqlite_store, embedder)
    said(tm, user, [("Ben", "I really like to eat sushi for lunch."), ("Ana", "Pasta is what I enjoy most."),
                    ("Ben", "The weather was cold today.")])
    query = "What does Ana like to eat?"
    off = tm.variant(levers=EpisodeLevers())
    assert rank(off, user, query, "session_1:1") > 1  # Ben's words are closer
    assert rank(tm.variant(levers=EpisodeLevers(speakers=0.5)), user, query, "session_1:1") == 1
    assert rank(tm, user, query, "session_1:1") == 1  # on by default
    hit = off.search(query, user_id=user, limit=3, scope="episodes")[0]
    assert hit.episode is not None and hit.episode.name == "Ben"  # the name travels with the message


def test_the_neighbours_lever_lifts_the_answer_next_to_the_question(sqlite_store, embedder, user) -> None:
    tm = TiMem(sqlite_store, embedder)
    said(tm, user, [("Ana", "I moved to a new flat downtown."), ("Ben", "What is the name of your cat?"),
                    ("Ana", "Misty."), ("Ben", "My cat sleeps all day on the sofa."),
                    ("Ana", "Cats are great company."), ("Ben", "I named my bike Thunder.")])
    query = "What is the name of Ana's cat?"
    off = rank(tm.variant(levers=EpisodeLevers()), user, query, "session_1:2")
    on = rank(tm.variant(levers=EpisodeLevers(neighbours=0.5)), user, query, "session_1:2")
    assert on < off and on <= 2


def test_a_lever_without_its_signal_changes_nothing(sqlite_store, embedder, user) -> None:
    tm = TiMem(sqlite_store, embedder)
    said(tm, user, [("Ana", "I play the violin.")], title="s1")  # one message per session: no neighbours
    said(tm, user, [("Ben", "I play chess on Sundays.")], title="s2")
    query = "Who plays music?"  # names no one
    off = tm.variant(levers=EpisodeLevers()).search(query, user_id=user, limit=2, scope="episodes")
    default = tm.search(query, user_id=user, limit=2, scope="episodes")
    assert [(h.id, h.score) for h in default] == [(h.id, h.score) for h in off]
    assert not any(h.scores.levers for h in default)


def test_a_message_name_is_checked_at_the_door(sqlite_store, embedder, user) -> None:
    tm = TiMem(sqlite_store, embedder)
    for bad in ("", "   ", "x" * 65, 7):
        with pytest.raises(InvalidInputError, match="name"):
            tm.save_messages([{"role": "user", "content": "hi", "name": bad}], user_id=user)
    saved = tm.save_messages([{"role": "user", "content": "hi", "name": " Ana "}], user_id=user)
    assert saved[0].name == "Ana"
