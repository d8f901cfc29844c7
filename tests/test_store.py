"""The storage interface, on SQLite and on the real MariaDB server (same bodies, parametrised)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from timemory import ConcurrentUpdateError, EmbeddingMismatchError, InvalidInputError, NewMessage, NotFoundError, TiMem
from timemory.search import build_search
from timemory.store import AddMemory, ChangeMemory, DeleteMemory, Store


def test_add_then_search_ranks_by_cosine(tm: TiMem, user: str) -> None:
    tea = tm.add("The user drinks green tea every morning.", user_id=user, type="preference")
    tm.add("The user works as a nurse in Lyon.", user_id=user, type="professional")
    tm.add("The user has a dog called Rex.", user_id=user, type="personal")
    hits = tm.search("what does the user like to drink", user_id=user, limit=3)
    assert hits[0].memory.id == tea.id
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert 0.0 < hits[0].score <= 1.0001


def test_search_filters_by_type_and_status(tm: TiMem, user: str) -> None:
    old = tm.add("The user lives in Paris.", user_id=user, type="personal", status="outdated")
    new = tm.add("The user lives in Berlin.", user_id=user, type="personal")
    tm.add("The user plans to visit Paris in May.", user_id=user, type="plan")
    assert {h.memory.id for h in tm.search("where does the user live", user_id=user, limit=5)} >= {new.id}
    assert old.id not in {h.memory.id for h in tm.search("where does the user live", user_id=user, limit=5)}
    both = tm.search("where does the user live", user_id=user, limit=5, statuses=("active", "outdated"))
    assert old.id in {h.memory.id for h in both}
    plans = tm.search("Paris", user_id=user, limit=5, types=["plan"])
    assert [h.memory.type for h in plans] == ["plan"]


def test_list_filters_and_text_is_literal(tm: TiMem, user: str) -> None:
    tm.add("The user saves 100% of bonuses.", user_id=user, type="personal")
    tm.add("The user likes snake_case names.", user_id=user, type="preference")
    tm.add("The user likes tea.", user_id=user, type="preference", status="outdated")
    assert [m.content for m in tm.list_memories(user_id=user, text="100%")] == ["The user saves 100% of bonuses."]
    assert [m.content for m in tm.list_memories(user_id=user, text="e_c")] == ["The user likes snake_case names."]
    assert tm.list_memories(user_id=user, text="%") and len(tm.list_memories(user_id=user, text="_")) == 1
    assert tm.list_memories(user_id=user, text="' OR 1=1 --") == []
    assert {m.status for m in tm.list_memories(user_id=user, statuses=["outdated"])} == {"outdated"}
    assert len(tm.list_memories(user_id=user, types=["preference"])) == 2
    assert tm.count_memories(user_id=user, types=["preference"], statuses=["active"]) == 1
    page1, page2 = tm.list_memories(user_id=user, limit=2), tm.list_memories(user_id=user, limit=2, offset=2)
    assert len(page1) == 2 and len(page2) == 1 and not {m.id for m in page1} & {m.id for m in page2}


def test_update_reembeds_and_writes_edit_event(tm: TiMem, user: str) -> None:
    m = tm.add("The user plays tennis.", user_id=user, type="activity")
    assert tm.search("chess", user_id=user, limit=1, mode="vector")[0].score < 0.5
    edited = tm.update_memory(m.id, user_id=user, content="The user plays chess online.")
    assert edited.content == "The user plays chess online."
    assert tm.search("chess", user_id=user, limit=1, mode="vector")[0].score > 0.5  # the vector follows the new text
    events = tm.history(m.id, user_id=user)
    assert [e.event for e in events] == ["ADD", "EDIT"]
    assert events[1].old_content == "The user plays tennis." and events[1].actor == "user"


def test_status_changes_write_outdate_and_reactivate(tm: TiMem, user: str) -> None:
    m = tm.add("The user is vegetarian.", user_id=user, type="preference")
    out = tm.update_memory(m.id, user_id=user, status="outdated")
    assert out.status == "outdated" and out.outdated_at is not None
    back = tm.update_memory(m.id, user_id=user, status="active")
    assert back.status == "active" and back.outdated_at is None
    assert [e.event for e in tm.history(m.id, user_id=user)] == ["ADD", "OUTDATE", "REACTIVATE"]


def test_delete_keeps_history(tm: TiMem, user: str) -> None:
    m = tm.add("The user has a cat.", user_id=user, type="personal")
    tm.delete_memory(m.id, user_id=user)
    with pytest.raises(NotFoundError):
        tm.get_memory(m.id, user_id=user)
    assert [e.event for e in tm.history(m.id, user_id=user)] == ["ADD", "DELETE"]
    assert tm.search("cat", user_id=user) == []


def test_apply_is_all_or_nothing(store: Store, embedder, user: str) -> None:
    tm = TiMem(store, embedder)
    keep = tm.add("The user likes jazz.", user_id=user, type="preference")
    vec = embedder.embed(["The user likes opera."])[0]
    with pytest.raises(NotFoundError):
        store.memories.apply(user, [
            AddMemory(content="The user likes opera.", type="preference", embedding=vec),
            ChangeMemory(memory_id=keep.id, content="The user likes opera and jazz.", embedding=vec),
            DeleteMemory(memory_id="no-such-id"),
        ])
    assert [m.content for m in tm.list_memories(user_id=user)] == ["The user likes jazz."]
    assert [e.event for e in tm.history(keep.id, user_id=user)] == ["ADD"]


def test_expected_version_detects_another_writer(store: Store, embedder, user: str) -> None:
    tm = TiMem(store, embedder)
    tm.add("The user likes jazz.", user_id=user, type="preference")
    seen = store.users.version(user)
    tm.add("The user likes rock.", user_id=user, type="preference")
    vec = embedder.embed(["x"])[0]
    with pytest.raises(ConcurrentUpdateError):
        store.memories.apply(user, [AddMemory(content="x", type="personal", embedding=vec)], expected_version=seen)
    assert tm.count_memories(user_id=user) == 2


def test_second_store_sees_writes_of_the_first(store: Store, embedder, user: str, tmp_path) -> None:
    other = Store(store.engine, embedding_model=embedder.name, embedding_dim=embedder.dim)
    a, b = TiMem(store, embedder), TiMem(other, embedder)
    assert b.search("tea", user_id=user) == []  # caches an empty index for the user
    a.add("The user drinks tea.", user_id=user, type="preference")
    assert [h.memory.content for h in b.search("tea", user_id=user)] == ["The user drinks tea."]


def test_wrong_dimension_is_a_clear_error(store: Store, user: str) -> None:
    with pytest.raises(EmbeddingMismatchError, match="reembed"):
        store.memories.apply(user, [AddMemory(content="x", type="personal", embedding=np.ones(10, np.float32))])
    with pytest.raises(EmbeddingMismatchError):
        build_search(store).nearest(user, np.ones((1, 10), np.float32), 3)


def test_other_embedding_model_names_reembed(store: Store, embedder, user: str) -> None:
    TiMem(store, embedder).add("The user likes tea.", user_id=user, type="preference")
    with pytest.raises(EmbeddingMismatchError, match="reembed"):
        Store(store.engine, embedding_model="text-embedding-3-small", embedding_dim=1536)


def test_invalid_type_status_and_empty_content(tm: TiMem, user: str) -> None:
    with pytest.raises(InvalidInputError, match="type"):
        tm.add("x", user_id=user, type="hobby")
    with pytest.raises(InvalidInputError, match="status"):
        tm.add("x", user_id=user, type="personal", status="archived")
    with pytest.raises(InvalidInputError):
        tm.add("   ", user_id=user, type="personal")
    with pytest.raises(InvalidInputError):
        tm.add("text", user_id="", type="personal")


def test_text_round_trips_unchanged(tm: TiMem, user: str) -> None:
    texts = ["The user loves 🍜 and ☕️.", "המשתמש גר בתל אביב.", "<script>alert('x')</script> is a test string."]
    ids = [tm.add(t, user_id=user, type="personal").id for t in texts]
    assert [tm.get_memory(i, user_id=user).content for i in ids] == texts


def test_sessions_and_idempotent_messages(store: Store, user: str) -> None:
    s = store.conversations.create_session(user, "  My   first chat ")
    assert s.title == "My first chat"
    msgs = [NewMessage(id="m1", role="user", content="hello"), NewMessage(id="m2", role="assistant", content="hi")]
    store.conversations.save_messages(user, s.id, msgs)
    store.conversations.save_messages(user, s.id, msgs)  # re-ingesting keeps one copy
    assert [m.id for m in store.conversations.list_messages(user, s.id)] == ["m1", "m2"]
    assert store.conversations.list_sessions(user)[0].message_count == 2
    assert store.conversations.rename_session(user, s.id, "Renamed").title == "Renamed"
    store.conversations.delete_session(user, s.id)
    assert store.conversations.list_sessions(user) == []
    with pytest.raises(NotFoundError):
        store.conversations.get_session(user, s.id)


def test_delete_user_removes_everything(store: Store, embedder, user: str) -> None:
    tm = TiMem(store, embedder)
    tm.add("The user likes tea.", user_id=user, type="preference")
    store.conversations.create_session(user, "chat")
    store.erasure.user(user)
    assert tm.list_memories(user_id=user) == [] and store.conversations.list_sessions(user) == []
    assert user not in {u.id for u in store.users.list()}


def test_patched_search_cache_matches_a_fresh_load(store: Store, embedder, user: str) -> None:
    """Writes patch the cached matrix instead of reloading it; searches must equal a fresh store's on the same rows."""
    tm = TiMem(store, embedder)
    other = Store.from_url(str(store.engine.url.render_as_string(hide_password=False)),
                           embedding_model=embedder.name, embedding_dim=embedder.dim)
    queries = embedder.embed(["Where does the user live?", "What does the user eat?", "Which sport?"])

    def same() -> None:
        fresh = Store.from_url(str(store.engine.url.render_as_string(hide_password=False)),
                               embedding_model=embedder.name, embedding_dim=embedder.dim)
        for k, statuses in itertools.product((2, 20), (("active",), ("active", "outdated"), None)):
            mine, theirs = ([[(m.id, round(s, 5)) for m, s in row] for row in build_search(db).nearest(user, queries, k,
                                                                                           statuses=statuses)]
                            for db in (store, fresh))
            assert mine == theirs
        fresh.close()

    texts = ["The user lives in Porto.", "The user is vegetarian.", "The user plays tennis.", "The user likes jazz."]
    ids = [tm.add(t, user_id=user, type="personal").id for t in texts]
    same()  # loaded once
    for i in range(12):  # appends grow the buffer; every kind of change patches it
        ids.append(tm.add(f"The user visited city number {i}.", user_id=user, type="activity").id)
    tm.update_memory(ids[0], user_id=user, content="The user lives in Lisbon now.")
    tm.set_status([ids[1]], user_id=user, status="outdated")
    tm.delete_memory(ids[2], user_id=user)
    tm.update_memory(ids[3], user_id=user, type="preference")
    same()
    TiMem(other, embedder).add("The user eats fish again.", user_id=user, type="preference")  # another writer: reload
    same()
    tm.delete_memories(ids[4:10], user_id=user)
    tm.set_status([ids[1]], user_id=user, status="active")
    same()
    other.close()


@pytest.mark.parametrize("kind", ["half", "int8"])
def test_coarse_preselection_gives_the_exact_float32_ranking(embedder, kind: str) -> None:
    """Large users are pre-selected by a cheaper pass (float16 or int8) and re-ranked in float32; the result must
    equal the float32 pass, also for near-duplicate rows where the candidates cannot be proven complete (then it
    falls back)."""
    from timemory.search import NumpyIndex
    from timemory.search._matrix import UserVectors

    rng = np.random.default_rng(3)
    base = embedder.embed([f"The user mentioned fact number {i} about travel and food." for i in range(300)])
    near = base[0] + rng.normal(0, 1e-3, (200, base.shape[1])).astype(np.float32)  # 200 near-duplicates
    matrix = np.vstack([base, near]).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    n = len(matrix)
    statuses = np.where(np.arange(n) % 7 == 0, 1, 0).astype(np.int8)  # some outdated
    entry = UserVectors(version=1, n=n, ids=[f"m{i}" for i in range(n)], buffer=matrix,
                        types=np.zeros(n, np.int8), statuses=statuses, rows={})
    exact_index = NumpyIndex(matrix.shape[1], coarse_kind=None)
    half_index = NumpyIndex(matrix.shape[1], coarse_from=0, coarse_kind=kind, candidates=(64, 256))
    queries = np.vstack([embedder.embed(["travel and food", "fact number 12"]), matrix[[0, 5, 350]]])
    for k in (1, 5, 10):
        for statuses_filter in (None, ("active",)):
            want = exact_index.rank(entry, queries, k, None, statuses_filter)
            got = half_index.rank(entry, queries, k, None, statuses_filter)
            # the same top-k scores (near-duplicates tie within float rounding, so ids may swap among equals) ...
            assert np.allclose([[s for _, s in row] for row in got], [[s for _, s in row] for row in want], atol=1e-6)
            for q, row in zip(queries, got, strict=True):  # ... and each returned score is that row's true score
                assert all(abs(float(matrix[int(i[1:])] @ q) - s) < 1e-6 for i, s in row)


@pytest.mark.parametrize("kind", ["half", "int8"])
def test_coarse_error_bound_holds_and_row_patches_equal_a_rebuild(embedder, kind: str) -> None:
    import torch

    from timemory.search import _coarse as coarse

    texts = [f"The user mentioned fact number {i} about travel, food and {i % 13} friends." for i in range(300)]
    buffer = np.zeros((400, 384), np.float32)
    buffer[:300] = embedder.embed(texts)
    coarse_copy = coarse.build(kind, buffer, 300)
    for q in embedder.embed(["travel and food", "fact number 12", "Kofi", "🙂"]):
        assert np.abs(coarse.scores(coarse_copy, q, 300) - buffer[:300] @ q).max() <= coarse.error(coarse_copy, q)
    new = embedder.embed([f"A new memory {i} about chess in Porto." for i in range(12)])
    rows = [5, 10, *range(300, 310)]
    buffer[rows] = new
    coarse.update(coarse_copy, rows, buffer[rows])
    rebuilt = coarse.build(kind, buffer, 310)
    assert torch.equal(coarse_copy.data[:310], rebuilt.data[:310])
    if kind == "int8":
        assert torch.equal(coarse_copy.scales[:310], rebuilt.scales[:310])


def test_first_writes_of_new_users_at_once_never_deadlock(store: Store, embedder) -> None:
    """Writers that each keep starting new users all land (on InnoDB a locking read of a missing user row took a gap
    lock, and two such first writes deadlocked on their inserts: 2 in 120 writes here before the fix)."""
    import threading

    vector = embedder.embed(["a first memory"])[0]
    threads, users_each = 4, 150
    failures: list[Exception] = []

    def writer(t: int) -> None:
        for u in range(users_each):
            try:
                store.memories.apply(f"new-user-{t}-{u}", [AddMemory(content=f"first memory {t} {u}",
                                                                     type="personal", embedding=vector, actor="user")])
            except Exception as exc:  # collected and reported below
                failures.append(exc)

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not failures, failures[:2]
    assert all(len(store.memories.list(f"new-user-{t}-{u}")) == 1 for t in range(threads) for u in range(users_each))


def test_memories_are_keyed_by_user_and_older_tables_keyed_by_id_still_work(embedder) -> None:
    """New tables keep a user's rows together (key user_id, id); a table made before that, keyed by id alone, is
    used as it is, and startup does not build a second index on id over it."""
    from databases import MYSQL_URL, reset_mysql
    from sqlalchemy import create_engine, inspect, text

    reset_mysql(MYSQL_URL)
    store = Store.from_url(MYSQL_URL, embedding_model=embedder.name, embedding_dim=embedder.dim)
    assert inspect(store.engine).get_pk_constraint("memories")["constrained_columns"] == ["user_id", "id"]
    store.engine.dispose()
    engine = create_engine(MYSQL_URL)
    with engine.begin() as conn:  # the layout of older versions
        conn.execute(text("ALTER TABLE memories DROP PRIMARY KEY, ADD PRIMARY KEY (id)"))
        conn.execute(text("DROP INDEX ux_memories_id ON memories"))
    engine.dispose()
    old = Store.from_url(MYSQL_URL, embedding_model=embedder.name, embedding_dim=embedder.dim)
    indexes = {ix["name"] for ix in inspect(old.engine).get_indexes("memories")}
    assert "ux_memories_id" not in indexes
    tm = TiMem(old, embedder)
    kept = tm.add("The user keeps bees.", user_id="alice", type="activity")
    assert tm.get_memory(kept.id, user_id="alice").content == "The user keeps bees."
    tm.update_memory(kept.id, user_id="alice", content="The user keeps two hives of bees.")
    with pytest.raises(NotFoundError):
        tm.update_memory(kept.id, user_id="bob", content="stolen")
    with pytest.raises(InvalidInputError):  # an imported id that another user holds is refused
        old.memories.apply("bob", [AddMemory(content="x", type="activity", embedding=embedder.embed(["x"])[0],
                                             actor="user", memory_id=kept.id)])
    tm.erase(memory_id=kept.id, user_id="alice")
    assert tm.list_memories(user_id="alice") == []
