"""The Lab's tables, read from an experiment's stored record: why questions were missed at the k chosen (counted by
hand below), recall by scope, and a running replay's own counts."""

from __future__ import annotations

from typing import Any

from dashboard import lab_tables
from timemory import Experiment
from timemory.lab import ATTRIBUTION_K, EvaluationResult, QuestionResult, ReplayJob, Retrieved


def question(qid: str, category: int, hit: dict[str, bool], learnt: bool, session_hit: dict[str, bool] | None = None
             ) -> dict[str, Any]:
    """One question as an experiment stores it (an int category, as older records and hand-made ones have it)."""
    return {"id": qid, "category": category, "hit_at": hit, "evidence_learnt": learnt,
            "session_hit_at": session_hit or {}}


# at k=1: q1 hit, q2 extraction miss recovered (found, nothing learnt), q3 session hit, q4 retrieval miss (learnt,
# ranked lower), q5 extraction miss; at k=5: q1, q2, q4 found (q4 now a hit), q3 session hit, q5 missed
QUESTIONS = [
    question("q1", 1, {"1": True, "5": True}, True),
    question("q2", 1, {"1": True, "5": True}, False),
    question("q3", 2, {"1": False, "5": False}, True, {"1": True, "5": True}),
    question("q4", 2, {"1": False, "5": True}, True),
    question("q5", 2, {"1": False, "5": False}, False),
]
READ = [QuestionResult.model_validate(q) for q in QUESTIONS]


def experiment(name: str, **metrics: Any) -> Experiment:
    """An experiment with these stored metrics."""
    return Experiment(id=name, name=name, dataset_path=f"/data/datasets/{name}.json", dataset_sha256="0",
                      dataset_format="locomo", user_prefix=f"{name}-", status="done", wall_seconds=90,
                      config={"llm_model": "m", "granularity": "exchange", "embedder": "e", "search_mode": "hybrid"},
                      counts={"exchanges": 12, "failed": 1, "llm_calls": 30, "prompt_tokens": 900,
                              "completion_tokens": 100}, metrics=metrics)


def test_questions_are_counted_by_why_they_were_missed_at_the_k_chosen() -> None:
    assert lab_tables.attribution_at(READ, 1) == {
        "hit": 1, "extraction_miss_recovered": 1, "session_hit": 1, "retrieval_miss": 1, "extraction_miss": 1}
    assert lab_tables.attribution_at(READ, 5) == {
        "hit": 2, "extraction_miss_recovered": 1, "session_hit": 1, "retrieval_miss": 0, "extraction_miss": 1}


def test_nothing_is_attributed_at_a_k_that_was_not_scored_or_without_what_was_learnt() -> None:
    assert lab_tables.attribution_at(READ, 10) == {} and lab_tables.attribution_at([], 1) == {}
    older = [QuestionResult.model_validate({k: v for k, v in q.items() if k != "evidence_learnt"}) for q in QUESTIONS]
    assert lab_tables.attribution_at(older, 1) == {}
    assert lab_tables.why_missed(READ[3], 1) == "retrieval_miss"
    assert lab_tables.why_missed(READ[3], 5) == "hit"
    assert lab_tables.why_missed(READ[3], 10) is None and lab_tables.why_missed(None, 1) is None
    assert lab_tables.why_missed(older[0], 1) is None


def test_attribution_per_category() -> None:
    by_category = lab_tables.attribution_by_category(READ, 1)
    assert list(by_category) == ["1", "2"]
    assert by_category["1"]["hit"] == 1 and by_category["1"]["extraction_miss_recovered"] == 1
    assert sum(by_category["1"].values()) == 2 and sum(by_category["2"].values()) == 3
    assert (by_category["2"]["session_hit"], by_category["2"]["retrieval_miss"],
            by_category["2"]["extraction_miss"]) == (1, 1, 1)


def test_the_misses_row_names_each_kind_at_k_and_the_questions_about_a_change() -> None:
    stale = {"latest_found_at": {"1": 0.5, "5": 0.75}, "stale_returned_at": {"1": 0.25, "5": 0.5},
             "stale_active": 2}
    e = experiment("exp1", questions=QUESTIONS, stale=stale)
    row = lab_tables.misses(e, lab_tables.evaluation(e), 5)
    assert row == {"name": "exp1", "hit @5": 2, "extraction miss recovered @5": 1, "session hit @5": 1,
                   "retrieval miss @5": 0, "extraction miss @5": 1,
                   "update: latest @5": 0.75, "update: stale returned @5": 0.5, "update: stale active": 2}
    unscored = experiment("exp2")
    assert lab_tables.evaluation(unscored) is None and lab_tables.misses(unscored, None, 5) == {"name": "exp2"}


def test_the_recall_row_shows_each_scope_and_the_session_hits_that_happened() -> None:
    e = experiment("exp1", scored_questions=5, search_scope="all", recall_at={"1": 0.4, "5": 0.6},
                   recall_by_scope={"memories": {"1": 0.2, "5": 0.4}, "all": {"1": 0.4, "5": 0.6}},
                   session_hit_at={"1": 0.0, "5": 0.2}, distractors={"median": 40, "min": 3})
    assert lab_tables.recall(e, lab_tables.evaluation(e)) == {
        "name": "exp1", "questions": 5, "scored in": "all", "recall@1": 0.4, "recall@5": 0.6,
        "facts only @1": 0.2, "facts only @5": 0.4, "facts + said @1": 0.4, "facts + said @5": 0.6,
        "session hit@5": 0.2, "others (median)": 40, "others (fewest)": 3}


def test_the_recall_row_shows_the_interval_mrr_and_session_recall_when_recorded() -> None:
    e = experiment("exp2", scored_questions=4, recall_at={"5": 0.5}, recall_ci={"5": [0.25, 0.75]}, mrr=0.375,
                   session_recall_at={"5": 0.75})
    row = lab_tables.recall(e, lab_tables.evaluation(e))
    assert row["recall@5 95% CI"] == "0.25–0.75" and row["MRR"] == 0.375 and row["session recall@5"] == 0.75
    assert list(row).index("recall@5") < list(row).index("recall@5 95% CI") < list(row).index("MRR")


def test_scored_ks_are_every_experiment_s_and_the_default_when_none() -> None:
    scored = [lab_tables.evaluation(experiment("a", recall_at={"10": 1, "1": 0})),
              lab_tables.evaluation(experiment("b", recall_at={"5": 0})), lab_tables.evaluation(experiment("c"))]
    assert lab_tables.scored_ks(scored) == [1, 5, 10]
    assert lab_tables.scored_ks([lab_tables.evaluation(experiment("a"))]) == [ATTRIBUTION_K]


def test_the_setup_row_uses_a_running_replay_s_own_counts() -> None:
    e = experiment("exp1")
    row = lab_tables.setup(e)
    assert row == {"name": "exp1", "status": "done", "dataset": "exp1.json", "model": "m", "per": "exchange",
                   "replayed": "12 exchanges", "failed": 1, "LLM calls": 30, "tokens": 1000, "minutes": 1.5}
    job = ReplayJob(experiment="exp1", dataset=None, user_prefix="exp1-", granularity="exchange",  # type: ignore[arg-type]
                    done=4, failures=0)
    assert (lab_tables.setup(e, job)["replayed"], lab_tables.setup(e, job)["failed"]) == ("4 exchanges", 0)
    full = lab_tables.setup(e, full=True)
    assert (full["format"], full["embedder"], full["mode"], full["scored in"]) == ("locomo", "e", "hybrid", None)
    scored = EvaluationResult(search_scope="all")
    assert lab_tables.setup(e, full=True, scored=scored)["scored in"] == "all"


def test_an_unscored_experiment_has_a_recall_row_with_nothing_in_it() -> None:
    assert lab_tables.recall(experiment("exp1"), None) == {
        "name": "exp1", "questions": None, "scored in": "memories", "others (median)": None, "others (fewest)": None}


def test_a_per_session_replay_is_counted_in_sessions() -> None:
    assert lab_tables.replayed(3, "session") == "3 sessions" and lab_tables.replayed(1, "session") == "1 session"
    assert lab_tables.replayed(12, "exchange") == "12 exchanges" and lab_tables.replayed(None, "session") is None


def test_retrieved_hits_show_their_rank_and_where_k_ends() -> None:
    hits = [Retrieved(memory_id=f"m{i}", user_id="u", content=f"hit {i}", score=s, evidence_hit=i == 2)
            for i, s in enumerate([0.5, 0.25, -0.125], 1)]
    assert lab_tables.retrieved_lines(hits, 2) == [" 1. · +0.50  hit 1", " 2. ✅ +0.25  hit 2",
                                                   "──── k = 2: below this line is not counted ────",
                                                   " 3. · -0.12  hit 3"]
    assert lab_tables.retrieved_lines(hits, 5)[-1] == " 3. · -0.12  hit 3"  # all within k: no rule
