"""Hybrid, vector and keyword search through TiMem on SQLite and MariaDB: what each mode finds, the score parts it
explains itself with, hostile queries, and that one user's memories never touch another's keyword statistics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from timemory import InvalidInputError, TiMem
from timemory.search._keyword import KeywordIndex, query_terms, terms
from timemory.store import Store

MEMORIES = [
    ("The user lives in Kraków with a border collie named Rufus.", "personal"),
    ("The user painted a sunset over the lake last summer.", "activity"),
    ("The user is allergic to peanuts and carries an EpiPen.", "health"),
    ("In May 2021 the user went hiking near Porto with Kofi.", "activity"),
    ("The user works as a pharmacist at a hospital.", "professional"),
    ("The user's favourite film is Paris, Texas.", "preference"),
    ("The user runs 10 km every Sunday morning.", "activity"),
    ("The user plans to visit Osaka in March 2027.", "plan"),
]


@pytest.fixture
def tm(store: Store, embedder, user: str) -> TiMem:
    engine = TiMem(store, embedder)
    for content, type_ in MEMORIES:
        engine.add(content, user_id=user, type=type_)
    return engine


def contents(hits) -> list[str]:
    return [h.memory.content for h in hits]


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_each_mode_finds_a_named_memory(tm: TiMem, user: str, mode: str) -> None:
    hits = tm.search("Who is Kofi?", user_id=user, limit=3, mode=mode)
    assert contents(hits)[0] == MEMORIES[3][0]
    assert all(h.scores is not None and h.scores.mode == mode for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_keyword_mode_returns_only_memories_sharing_a_word(tm: TiMem, user: str) -> None:
    hits = tm.search("What did the user paint?", user_id=user, limit=5, mode="keyword")
    assert contents(hits) == [MEMORIES[1][0]]  # "painted" and "paint" share their stem
    assert hits[0].scores is not None and hits[0].scores.matched_terms == ["paint"]
    assert hits[0].scores.vector is None  # keyword mode never embeds the query
    assert tm.search("krakow", user_id=user, limit=5, mode="keyword")[0].memory.content == MEMORIES[0][0]  # accents


def test_hybrid_ranks_a_number_the_vector_blurs(tm: TiMem, user: str) -> None:
    query = "What is planned for March 2027?"
    assert contents(tm.search(query, user_id=user, limit=1, mode="hybrid")) == [MEMORIES[7][0]]
    hybrid = tm.search("10 km", user_id=user, limit=1, mode="hybrid")[0]
    assert hybrid.memory.content == MEMORIES[6][0] and hybrid.scores and "10" in hybrid.scores.matched_terms


def test_score_breakdowns_add_up_as_documented(tm: TiMem, user: str, embedder) -> None:
    query = "Which film does the user like, Paris Texas?"
    hybrid = tm.search(query, user_id=user, limit=len(MEMORIES), mode="hybrid")
    assert len(hybrid) == len(MEMORIES)  # hybrid ranks every memory, sharing words or not
    q = embedder.embed([query])[0]
    vectors = dict(zip([c for c, _ in MEMORIES], embedder.embed([c for c, _ in MEMORIES]), strict=True))
    best_keyword = max(h.scores.keyword for h in hybrid if h.scores and h.scores.keyword is not None)
    assert best_keyword > 0
    for h in hybrid:
        s = h.scores
        assert s is not None and s.vector is not None and s.keyword is not None and s.keyword_norm is not None
        assert s.vector_weight is not None and s.keyword_weight is not None
        assert s.vector_weight + s.keyword_weight == pytest.approx(1.0)
        assert s.vector == pytest.approx(float(q @ vectors[h.memory.content]), abs=1e-4)
        assert s.keyword_norm == pytest.approx(s.keyword / best_keyword, abs=1e-6)
        assert s.fused == pytest.approx(s.vector_weight * s.vector + s.keyword_weight * s.keyword_norm, abs=1e-6)
        assert h.score == s.fused
        assert (s.keyword > 0) == bool(s.matched_terms)
    vector = tm.search(query, user_id=user, limit=3, mode="vector")
    assert all(h.scores and h.score == h.scores.vector == h.scores.fused for h in vector)
    keyword = tm.search(query, user_id=user, limit=3, mode="keyword")
    assert all(h.scores and h.score == h.scores.keyword == h.scores.fused for h in keyword)
    by_id = {h.memory.id: h.scores for h in hybrid}
    assert [h.scores.keyword for h in keyword if h.scores] == pytest.approx(
        [by_id[h.memory.id].keyword for h in keyword])  # the same BM25 in both modes


HOSTILE = [
    "'; DROP TABLE memories; --",
    'NEAR(paint sunset) OR "lake" AND peanut*',
    "MATCH('paint') -- \\x00 %% _",
    "the of and to a",  # nothing left after stop words
    "🙂🔥👩‍👩‍👧 " * 50,
    "kofi " + "x" * 10_000,
    "\u202e\u200b\ufeff",
]


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_queries_rank_and_change_nothing(tm: TiMem, user: str, mode: str, query: str) -> None:
    before = [(m.id, m.content) for m in tm.list_memories(user_id=user, limit=100)]
    hits = tm.search(query, user_id=user, limit=5, mode=mode)
    assert len(hits) <= 5 and all(h.memory.user_id == user for h in hits)
    if mode == "keyword" and not query_terms(query):
        assert hits == []
    if mode != "keyword":
        assert len(hits) == 5  # meaning still ranks when no word is left
    assert [(m.id, m.content) for m in tm.list_memories(user_id=user, limit=100)] == before


def test_query_terms_are_capped_and_plain() -> None:
    many = " ".join(f"word{i}" for i in range(500))
    assert len(query_terms(many)) == 64
    assert terms("NEAR(paint) \"lake\" peanut* 2021-05-08") == ["near", "paint", "lake", "peanut", "2021", "05", "08"]
    assert terms("Kraków KRAKOW") == ["krakow", "krakow"]


def test_unknown_mode_is_a_clear_error(tm: TiMem, user: str) -> None:
    with pytest.raises(InvalidInputError, match="Unknown search mode"):
        tm.search("x", user_id=user, mode="fuzzy")  # type: ignore[arg-type]


def test_filters_apply_to_every_mode(tm: TiMem, user: str) -> None:
    for mode in ("hybrid", "vector", "keyword"):
        hits = tm.search("user", user_id=user, limit=10, types=["activity"], mode=mode)
        assert all(h.memory.type == "activity" for h in hits)
    outdated = tm.add("The user lives in Leeds.", user_id=user, type="personal", status="outdated")
    for mode in ("hybrid", "vector", "keyword"):
        assert outdated.id not in {h.memory.id for h in tm.search("Leeds", user_id=user, limit=10, mode=mode)}
        both = tm.search("Leeds", user_id=user, limit=10, mode=mode, statuses=("active", "outdated"))
        assert both[0].memory.id == outdated.id


def test_another_users_rows_never_touch_keyword_statistics(store: Store, embedder) -> None:
    tm = TiMem(store, embedder)
    for content, type_ in MEMORIES:
        tm.add(content, user_id="alice", type=type_)
    queries = ["Kofi in Porto", "peanuts", "What does the user paint?", "pharmacist hospital"]

    def scores() -> list[list[tuple[str, float]]]:
        return [[(h.memory.content, round(h.score, 6)) for h in tm.search(q, user_id="alice", limit=8, mode=m)]
                for q, m in itertools.product(queries, ("keyword", "hybrid"))]

    alone = scores()
    # Bob repeats Alice's words many times over: in a shared full-text index that would change every IDF.
    for i in range(40):
        tm.add(f"Kofi and the user ate peanuts in Porto, painted, visited hospital {i}.", user_id="bob",
               type="activity")
    assert scores() == alone
    assert all(h.memory.user_id == "alice"
               for q in queries for h in tm.search(q, user_id="alice", limit=20, mode="keyword"))
    assert tm.search("peanuts", user_id="carol", mode="keyword") == []


def test_keyword_index_follows_edits_like_a_fresh_load(store: Store, embedder, user: str) -> None:
    tm = TiMem(store, embedder)
    ids = [tm.add(c, user_id=user, type=t).id for c, t in MEMORIES]
    query = "peanuts hospital Porto chess"
    tm.search(query, user_id=user, mode="keyword")  # load the index, so the edits below patch it
    tm.update_memory(ids[2], user_id=user, content="The user plays chess at a club in Porto.")
    tm.delete_memory(ids[4], user_id=user)
    tm.add("The user volunteers at the hospital shop.", user_id=user, type="activity")
    tm.set_status([ids[3]], user_id=user, status="outdated")
    url = store.engine.url.render_as_string(hide_password=False)
    fresh = TiMem(Store.from_url(url, embedding_model=embedder.name, embedding_dim=embedder.dim), embedder)
    for mode, statuses in itertools.product(("keyword", "hybrid"), (("active",), None)):
        mine, theirs = ({(h.memory.id, round(h.score, 5)) for h in engine.search(query, user_id=user, limit=20,
                                                                                  mode=mode, statuses=statuses)}
                        for engine in (tm, fresh))
        assert mine == theirs
    assert "peanuts" not in " ".join(contents(tm.search("peanuts", user_id=user, mode="keyword")))
    fresh.close()


def test_onnx_encoder_agrees_with_torch(embedder) -> None:
    from timemory.providers import LocalEmbedder

    assert embedder.runtime == "onnx"
    sample = [c for c, _ in MEMORIES] + ["Who is Kofi?", "What is planned for March 2027?", "Kraków 🙂", "x" * 3000]
    torch = LocalEmbedder(runtime="torch").embed(sample)
    onnx = embedder.embed(sample)
    assert np.min(np.sum(torch * onnx, axis=1)) >= 0.9999
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["half", "int8"])
@pytest.mark.parametrize("seed", range(3))
def test_hybrid_candidates_from_the_coarse_pass_rank_exactly_as_the_full_pass(
        seed: int, kind: str, monkeypatch) -> None:
    """Large users' hybrid search fuses only candidates (the vector top and the keyword top) when it can prove no
    other row could rank higher; it must return exactly what fusing every row returns."""
    from timemory.search import NumpyIndex
    from timemory.search._ranking import fuse

    fused_sizes: list[int] = []
    monkeypatch.setattr("timemory.search._matrix.fuse",
                        lambda rows, *a, **kw: fused_sizes.append(len(rows)) or fuse(rows, *a, **kw))
    rng = np.random.default_rng(seed)
    n, dim = 3_000, 32
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = ["kofi", "porto", "tennis", "lisbon", "peanuts", "chess", "march", "2021"]
    texts = [" ".join(rng.choice(words, size=rng.integers(0, 3))) + f" filler{i % 50}" for i in range(n)]
    statuses = rng.choice(["active", "outdated"], size=n).tolist()

    def load(_user: str):
        return [f"m{i}" for i in range(n)], ["personal"] * n, statuses, list(vectors), texts

    exact = NumpyIndex(dim, coarse_kind=None)
    fast = NumpyIndex(dim, coarse_from=0, coarse_kind=kind, candidates=(64, 512))
    for query_words, status_filter in itertools.product(["kofi porto", "chess", "nothing shared", "filler7 march"],
                                                        [("active",), None]):
        q = vectors[rng.integers(n)] + 0.3 * rng.normal(size=dim).astype(np.float32)
        q /= np.linalg.norm(q)
        for k in (1, 5, 60):
            want, got = ([(r.row, r.breakdown.fused) for r in index.find(
                index.vectors("u", 1, load), q, query_terms(query_words), k, "hybrid", None, status_filter)]
                for index in (exact, fast))
            assert_same_ranking(got, want)
    searches = 4 * 2 * 3  # per index; the exact one fuses every allowed row each time
    fallbacks = sum(size > 512 for size in fused_sizes) - searches
    assert fallbacks < searches / 2, fused_sizes  # the candidates answered most of the fast index's searches


def assert_same_ranking(got: list[tuple[int, float]], want: list[tuple[int, float]], tol: float = 1e-5) -> None:
    """The same scores (to ``tol``: SIMD kernels sum in a CPU's own order) of the same rows in the same order, except
    that rows whose scores tie within ``tol`` may come in either order (or either side of the cut)."""
    assert len(got) == len(want)
    assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=tol)
    wanted = dict(want)
    for (row, score), (wanted_row, _) in zip(got, want, strict=True):
        if row != wanted_row:
            tied = row in wanted and abs(wanted[row] - score) <= tol
            at_the_cut = row not in wanted and abs(want[-1][1] - score) <= tol
            assert tied or at_the_cut, f"row {row} ({score}) where {wanted_row} was expected"


def test_ranking_comparison_allows_only_ties_to_swap() -> None:
    assert_same_ranking([(1, 0.5), (2, 0.4)], [(1, 0.5), (2, 0.400001)])
    assert_same_ranking([(2, 0.4), (1, 0.4)], [(1, 0.4), (2, 0.4)])  # a tie, either order
    with pytest.raises(AssertionError):
        assert_same_ranking([(2, 0.4), (1, 0.5)], [(1, 0.5), (2, 0.4)])  # out of order
    with pytest.raises(AssertionError):
        assert_same_ranking([(1, 0.5), (3, 0.4), (4, 0.3)], [(1, 0.5), (2, 0.4), (4, 0.3)])  # another row
    with pytest.raises(AssertionError):
        assert_same_ranking([(1, 0.5), (2, 0.3)], [(1, 0.5), (2, 0.4)])  # a different score


def test_the_scan_kernel_equals_numpy() -> None:
    from timemory.search._kernels import dot_rows, dot_rows_at

    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(1_000, 384)).astype(np.float32)
    query = rng.normal(size=384).astype(np.float32)
    assert np.allclose(dot_rows(matrix, query), matrix @ query, atol=1e-4)
    assert np.allclose(dot_rows(matrix[::2], query), matrix[::2] @ query, atol=1e-4)  # not contiguous: numpy
    assert dot_rows(matrix[:0], query).shape == (0,)
    rows = np.array([999, 3, 3, 500, 0])  # by index: any order, repeats allowed
    assert np.allclose(dot_rows_at(matrix, rows, query), matrix[rows] @ query, atol=1e-4)
    assert np.allclose(dot_rows_at(matrix[::2], rows // 2, query), matrix[::2][rows // 2] @ query, atol=1e-4)
    assert dot_rows_at(matrix, rows[:0], query).shape == (0,)


def test_matches_are_shown_in_the_words_of_the_query(tm: TiMem, user: str) -> None:
    hit = tm.search("Which ferries and hikes near Porto?", user_id=user, limit=1, mode="keyword")[0]
    assert hit.memory.content == MEMORIES[3][0]
    assert hit.scores is not None and hit.scores.matched_terms == ["hikes", "near", "porto"]  # not "hike", "porto"


def test_keyword_index_built_at_once_equals_one_row_at_a_time() -> None:
    texts = ["The user sails in Porto every summer.", "", "Porto, Porto and more Porto!", "Kraków in 2019 🙂",
             "the and of", "The user teaches sailing to kids in Porto."]
    batch = KeywordIndex.build(texts)
    stepwise = KeywordIndex()
    for row, text in enumerate(texts):
        stepwise.set(row, text)
    assert batch.nbytes == stepwise.nbytes and batch.documents == stepwise.documents
    for query in (["porto"], ["sail", "porto"], ["krakow", "2019"], ["missing"]):
        (rows_a, scores_a), (rows_b, scores_b) = batch.scores(query, len(texts)), stepwise.scores(query, len(texts))
        assert rows_a.tolist() == rows_b.tolist() and np.allclose(scores_a, scores_b)
    for index in (batch, stepwise):  # both take later edits alike
        index.set(0, "The user now lives in Osaka.")
        index.remove(2)
    assert [r.tolist() for r in batch.scores(["porto", "osaka"], 6)] == \
        [r.tolist() for r in stepwise.scores(["porto", "osaka"], 6)]
