"""Hostile input on SQLite and MariaDB: a clear error and nothing lost, or text stored and returned unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from doubles import ScriptedLLMDouble

from timemory import EmbeddingMismatchError, InvalidInputError, NotFoundError, TiMem
from timemory.store import Store

MB = "x" * 1_000_000
TRICKY = [
    "The user loves 🍜, ☕️ and 👩🏽‍🔬.",
    "המשתמש גר בתל אביב ועובד כאחות.",  # right-to-left
    "مرحبا، أنا أعيش في عمّان",
    "'; DROP TABLE memories; --",
    "Robert'); DELETE FROM users WHERE ('1'='1",
    "<script>alert('x')</script><img src=x onerror=alert(1)>",
    "100% of the_user's time \\ backslash \\\\ and %s %(name)s {0}",
    "null byte \x00 in the middle",
    "tab\tand\nnew line",
    "Zalgo t̸̢̛e̶x̷t̴ and a zero width \u200b joiner",
]


@pytest.fixture
def tm(tm_with) -> TiMem:
    return tm_with(ScriptedLLMDouble(facts=[{"content": "The user lives in Oslo.", "type": "personal"}]))


def state(tm: TiMem, user: str) -> list[tuple[str, str, str]]:
    return sorted((m.id, m.content, m.status) for m in tm.list_memories(user_id=user, limit=1000))


@pytest.mark.parametrize("content", ["", "   ", "\n\t", None, 42, ["a list"]], ids=repr)
def test_empty_or_non_text_content_is_refused(tm: TiMem, user: str, content: object) -> None:
    with pytest.raises(InvalidInputError):
        tm.add(content, user_id=user, type="personal")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        tm.process_messages([{"role": "user", "content": content}], user_id=user)
    assert tm.list_memories(user_id=user) == []


def test_a_one_megabyte_message_is_refused_with_the_limit(tm: TiMem, user: str) -> None:
    kept = tm.add("The user lives in Paris.", user_id=user, type="personal")
    before = state(tm, user)
    for call in (lambda: tm.add(MB, user_id=user), lambda: tm.update_memory(kept.id, user_id=user, content=MB),
                 lambda: tm.process_messages([{"role": "user", "content": MB}], user_id=user),
                 lambda: tm.search(MB, user_id=user)):
        with pytest.raises(InvalidInputError, match="limit is 32,000"):
            call()
    assert state(tm, user) == before
    assert tm.sessions.list(user_id=user) == []  # not even the message was saved


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"type": "hobby"}, "Unknown memory type"),
    ({"status": "deleted"}, "status"),
    ({"type": "PERSONAL"}, "Unknown memory type"),
])
def test_invalid_type_or_status_is_refused(tm: TiMem, user: str, kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    kept = tm.add("The user lives in Paris.", user_id=user, type="personal")
    with pytest.raises(InvalidInputError, match=message):
        tm.add("The user plays chess.", user_id=user, **kwargs)
    with pytest.raises(InvalidInputError, match=message):
        tm.update_memory(kept.id, user_id=user, **kwargs)
    with pytest.raises(InvalidInputError, match=message):
        tm.list_memories(user_id=user, types=[kwargs.get("type", "personal")], statuses=[kwargs.get("status",
                                                                                                    "active")])
    assert state(tm, user) == [(kept.id, "The user lives in Paris.", "active")]


@pytest.mark.parametrize("memory_id", ["", "nope", "' OR '1'='1", "%", "../../etc/passwd", "x" * 5000])
def test_unknown_ids_are_not_found(tm: TiMem, user: str, memory_id: str) -> None:
    tm.add("The user lives in Paris.", user_id=user, type="personal")
    before = state(tm, user)
    for call in (lambda: tm.get_memory(memory_id, user_id=user), lambda: tm.history(memory_id, user_id=user),
                 lambda: tm.update_memory(memory_id, user_id=user, content="x"), lambda: tm.delete_memory(memory_id,
                                                                                                          user_id=user),
                 lambda: tm.set_status([memory_id], user_id=user, status="outdated")):
        with pytest.raises(NotFoundError):
            call()
    assert state(tm, user) == before


def test_text_filters_treat_sql_and_wildcards_as_text(tm: TiMem, user: str) -> None:
    texts = ["The user is 100% sure.", "The user likes snake_case.", "The user says ' OR 1=1 --", "The user likes tea."]
    for t in texts:
        tm.add(t, user_id=user, type="preference")
    found = {q: [m.content for m in tm.list_memories(user_id=user, text=q)] for q in ("%", "_", "' OR 1=1 --",
                                                                                      "\\", "%%")}
    assert found == {"%": [texts[0]], "_": [texts[1]], "' OR 1=1 --": [texts[2]], "\\": [], "%%": []}
    assert tm.count_memories(user_id=user, text="%") == 1


@pytest.mark.parametrize("content", TRICKY, ids=range(len(TRICKY)))
def test_unusual_text_round_trips_unchanged(tm: TiMem, user: str, content: str) -> None:
    m = tm.add(content, user_id=user, type="personal")
    assert tm.get_memory(m.id, user_id=user).content == content
    assert tm.list_memories(user_id=user, text=content[:6])[0].content == content
    session = tm.sessions.create(user_id=user, title=content)
    assert tm.sessions.get(session.id, user_id=user).title == " ".join(content.split())  # spacing folded, text kept


def test_lone_surrogates_are_refused_not_stored_mangled(tm: TiMem, user: str) -> None:
    bad = "The user says \ud800 hi"  # what decoding bytes with errors="surrogateescape" leaves behind
    with pytest.raises(InvalidInputError, match="not valid Unicode"):
        tm.add(bad, user_id=user)
    with pytest.raises(InvalidInputError, match="not valid Unicode"):
        tm.process_messages([{"role": "user", "content": bad}], user_id=user)
    assert tm.list_memories(user_id=user) == []


class WrongDimensionEmbedder:
    name = "all-MiniLM-L6-v2"
    dim = 384

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 128), np.float32) / np.sqrt(128)


def test_an_embedding_of_the_wrong_dimension_is_refused(store: Store, user: str) -> None:
    tm = TiMem(store, WrongDimensionEmbedder())  # type: ignore[arg-type]
    with pytest.raises(EmbeddingMismatchError, match="reembed"):
        tm.add("The user lives in Oslo.", user_id=user, type="personal")
    with pytest.raises(EmbeddingMismatchError):
        tm.search("Oslo", user_id=user)
    assert store.memories.list(user) == []
