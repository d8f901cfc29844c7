"""Episodes: every stored message is searchable beside the memories (scopes memories | episodes | all), on SQLite and
MariaDB, kept in step with new messages, deleted sessions, memory changes and erasure, and never another user's."""

from __future__ import annotations

import numpy as np
import pytest

from timemory import InvalidInputError, TiMem
from timemory.store import Store


def said(tm: TiMem, user: str, *lines: tuple[str, str, str]) -> str:
    """Store (id, role, text) messages in a new session of ``user``; its id."""
    session = tm.sessions.create(user_id=user)
    tm.sessions.add_messages([{"id": mid, "role": role, "content": text} for mid, role, text in lines],
                             user_id=user, session_id=session.id)
    return session.id


def test_each_scope_searches_what_it_names(tm: TiMem, user: str) -> None:
    said(tm, user, ("m1", "user", "My locker at the swimming pool is number 4512."),
         ("m2", "assistant", "Noted, locker 4512."),
         ("m3", "user", "I started working as a nurse in Porto."))
    tm.add("The user works as a nurse in Porto.", user_id=user, type="professional", source_message_ids=["m3"])

    memories = tm.search("Which locker does the user have at the pool?", user_id=user, scope="memories")
    assert [h.kind for h in memories] == ["memory"]  # the locker was never learnt: no memory holds it

    episodes = tm.search("Which locker does the user have at the pool?", user_id=user, limit=2, scope="episodes")
    assert {h.kind for h in episodes} == {"episode"}
    top = episodes[0].episode
    assert top is not None and top.message_id == "m1" and top.speaker == "user" and top.user_id == user
    assert "locker" in episodes[0].scores.matched_terms  # type: ignore[union-attr]

    both = tm.search("Where does the user work?", user_id=user, limit=4, scope="all")
    assert {h.kind for h in both} == {"memory", "episode"}
    assert [h.score for h in both] == sorted((h.score for h in both), reverse=True)
    memory_hit = next(h for h in both if h.kind == "memory")
    assert [e.message_id for e in memory_hit.sources] == ["m3"]  # a memory shows the message it was learnt from
    nurse = next(h for h in both if h.id == "m3")
    assert [m.content for m in nurse.episode.learnt] == ["The user works as a nurse in Porto."]  # type: ignore[union-attr]

    assert tm.search("swimming locker", user_id=user, mode="keyword", scope="episodes")[0].id == "m1"
    with pytest.raises(InvalidInputError, match="scope"):
        tm.search("locker", user_id=user, scope="everything")  # type: ignore[arg-type]


def test_a_message_is_found_by_what_was_learnt_from_it(tm: TiMem, user: str, embedder) -> None:
    """Fact-augmented keys: a terse reply is found by the meaning (and words) of the memory it taught."""
    said(tm, user, ("q", "assistant", "Do you do anything on weekend mornings?"),
         ("a", "user", "Yes, every Sunday without fail."))
    question = "Does the user go to church?"
    before = tm.search(question, user_id=user, limit=2, mode="vector", scope="episodes")
    own = {h.id: h.similarity for h in before}
    fact = "The user goes to church every Sunday morning."
    tm.add(fact, user_id=user, type="activity", source_message_ids=["a"])

    after = tm.search(question, user_id=user, limit=2, mode="vector", scope="episodes")
    assert after[0].id == "a"
    query, fact_vector = embedder.embed([question, fact])
    expected = max(own["a"], float(query @ fact_vector))
    assert after[0].similarity == pytest.approx(expected, abs=1e-5)
    assert after[0].similarity > own["a"]
    assert tm.search("church", user_id=user, mode="keyword", scope="episodes")[0].id == "a"  # its words count too


def test_episodes_follow_new_messages_deleted_sessions_and_erasure(tm: TiMem, store: Store, user: str) -> None:
    first = said(tm, user, ("m1", "user", "I keep bees on my balcony."))
    assert tm.search("beekeeping", user_id=user, scope="episodes")[0].id == "m1"
    said(tm, user, ("m2", "user", "My sister Ama lives in Accra."))  # stored after the index was built
    assert tm.search("Where does Ama live?", user_id=user, scope="episodes")[0].id == "m2"

    tm.sessions.delete(first, user_id=user)
    assert "m1" not in {h.id for h in tm.search("bees", user_id=user, limit=5, scope="episodes")}

    index = tm.engine.episodes
    assert index.cache.peek(user) is not None
    tm.erase_user(user_id=user)
    assert index.cache.peek(user) is None  # erased from memory at once, not at the next search
    assert tm.search("Ama", user_id=user, scope="all") == []


class CountingEmbedderDouble:
    """The real embedder, counting how many texts each call embeds."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.dim, self.calls = inner, inner.name, inner.dim, []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return self.inner.embed(texts)


def test_each_message_is_embedded_once_and_its_vector_kept(store: Store, embedder, user: str) -> None:
    counting = CountingEmbedderDouble(embedder)
    tm = TiMem(store, counting)
    said(tm, user, ("m1", "user", "I play the cello in a quartet."), ("m2", "user", "We rehearse on Thursdays."))
    tm.search("music", user_id=user, scope="episodes")
    assert counting.calls == [1, 2]  # the query, then both messages in one call
    tm.engine.episodes.invalidate()  # as in a new process: the vectors come from the database
    tm.search("music", user_id=user, scope="episodes")
    assert counting.calls == [1, 2, 1]
    stored = store.episodes.states(user)
    assert len(stored) == 2 and all(s.vector is not None and s.vector.shape == (store.dim,) for s in stored)


def test_another_users_messages_are_never_found(tm: TiMem, user: str) -> None:
    other = f"{user}-other"
    said(tm, other, ("o1", "user", "My passport number is X1234567."))
    tm.add("The user's passport number is X1234567.", user_id=other, type="personal", source_message_ids=["o1"])
    said(tm, user, ("u1", "user", "I like tea."))
    for scope in ("episodes", "all"):
        for mode in ("hybrid", "vector", "keyword"):
            hits = tm.search("passport number X1234567", user_id=user, limit=10, scope=scope, mode=mode)  # type: ignore[arg-type]
            assert all(h.user_id == user for h in hits)
            assert "X1234567" not in " ".join(h.text for h in hits)


def test_a_first_search_embeds_a_bounded_batch_newest_first(store: Store, embedder, user: str) -> None:
    counting = CountingEmbedderDouble(embedder)
    tm = TiMem(store, counting)
    tm.engine.episodes.embed_per_search = 2
    said(tm, user, *[(f"b{i}", "user", f"Message {i}: I keep bees on the roof number {i}.") for i in range(5)])
    hits = tm.search("bees on the roof number 0", user_id=user, scope="episodes", limit=5)
    assert counting.calls == [1, 2]  # the query, then the two newest messages
    assert "b0" in {h.episode.message_id for h in hits if h.episode}  # the oldest, not embedded yet, found by words
    assert sum(s.vector is not None for s in store.episodes.states(user)) == 2
    tm.search("bees", user_id=user, scope="episodes")
    tm.search("bees", user_id=user, scope="episodes")
    assert counting.calls == [1, 2, 1, 2, 1, 1]  # two more, then the last one
    tm.search("bees", user_id=user, scope="episodes")
    assert counting.calls[-1:] == [1] and len(counting.calls) == 7  # all embedded: the query only
    assert all(s.vector is not None for s in store.episodes.states(user))
