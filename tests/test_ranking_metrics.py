"""Ranking metrics and the bootstrap interval on cases counted by hand."""

from __future__ import annotations

import math

import pytest

from timemory.lab._metrics import all_found, bootstrap_ci, first_rank, gains, ndcg
from timemory.lab._results import QuestionResult, Scores

# Four hits: an unrelated one, evidence e1 twice (say as a message and as its fact), then evidence e2.
COVERED = [{"x"}, {"e1"}, {"e1", "x"}, {"e2"}]
EVIDENCE = {"e1", "e2"}


def test_the_first_evidence_hit_is_ranked_from_one() -> None:
    assert first_rank(COVERED, EVIDENCE) == 2
    assert first_rank(COVERED, {"e2"}) == 4
    assert first_rank(COVERED, {"nowhere"}) is None


def test_a_turn_found_twice_gains_once() -> None:
    assert gains(COVERED, EVIDENCE) == [0, 1, 0, 1]


def test_ndcg_against_one_evidence_turn_at_each_of_the_first_places() -> None:
    ideal = 1 + 1 / math.log2(3)  # two evidence turns: places 1 and 2
    assert ndcg(COVERED, EVIDENCE, 1) == 0.0
    assert ndcg(COVERED, EVIDENCE, 2) == pytest.approx((1 / math.log2(3)) / ideal)  # 0.3869
    assert ndcg(COVERED, EVIDENCE, 4) == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / ideal)  # 0.6509
    assert ndcg([{"e1"}], {"e1"}, 10) == 1.0  # one evidence turn, first: perfect at any k
    assert ndcg(COVERED, set(), 4) == 0.0


def test_all_evidence_needs_every_turn_in_the_top_k() -> None:
    assert not all_found(COVERED, EVIDENCE, 3)
    assert all_found(COVERED, EVIDENCE, 4)
    assert not all_found(COVERED, set(), 4)


def test_the_bootstrap_is_fixed_by_its_seed_and_brackets_the_mean() -> None:
    values = [1.0] * 50 + [0.0] * 50
    ci = bootstrap_ci(values)
    assert ci == bootstrap_ci(values)  # the same seed, the same interval
    spread = [(i % 17) / 7 for i in range(60)]  # means off any lattice: another seed moves the interval
    assert bootstrap_ci(spread) == bootstrap_ci(spread) != bootstrap_ci(spread, seed=1)
    lo, hi = ci
    assert lo < 0.5 < hi
    assert hi - lo == pytest.approx(2 * 1.96 * math.sqrt(0.25 / 100), abs=0.03)  # the normal interval, 0.196 wide
    assert bootstrap_ci([1.0] * 7) == [1.0, 1.0] and bootstrap_ci([]) == [0.0, 0.0]


def test_scores_average_the_questions_metrics() -> None:
    def question(rank: int | None, session: bool) -> QuestionResult:
        found = rank is not None and rank <= 5
        return QuestionResult(id=str(rank), hit_at={"5": found}, first_rank=rank,
                              ndcg_at={"5": 1.0 if rank == 1 else 0.0}, all_evidence_at={"5": found},
                              session_found_at={"5": session})

    scores = Scores.of([question(1, True), question(2, True), question(None, True), question(None, False)], [5], 5)
    assert scores.mrr == pytest.approx((1 + 0.5 + 0 + 0) / 4, abs=1e-4)
    assert scores.recall_at == {"5": 0.5} and scores.all_evidence_recall_at == {"5": 0.5}
    assert scores.ndcg_at == {"5": 0.25} and scores.session_recall_at == {"5": 0.75}
    lo, hi = scores.recall_ci["5"]
    assert lo <= 0.5 <= hi
