"""Evaluation: evidence recall@k at the k asked for, misses attributed, distractors counted, turn-level provenance
against session links, stale memories, and answers graded by a judge; each checked on a case counted by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_lab import LONGMEMEVAL, FactPerUserTurnDouble, adds_every_fact, dataset_files, make_tm

from timemory import TiMem, ValidationError
from timemory.lab import evaluate, load_dataset, replay
from timemory.store import Store


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return dataset_files(tmp_path)


def test_a_session_run_links_each_fact_to_its_turns_and_never_counts_the_session_as_evidence(
        sqlite_store: Store, embedder, files: dict[str, Path]) -> None:
    """Caroline's first session holds two facts (Paris, D1:1; the cat, D1:3). Learnt per session, a fact is linked to
    the user message closest to it in meaning; one that resembles none of them is linked to the session, and then
    finding it is a ``session_hit``, never a hit: "Where does Caroline live?" (evidence D1:3, the cat) is not found
    by a memory that only shares the cat's session."""
    ds = load_dataset(files["locomo"], "locomo", speaker="a")
    citing = make_tm(sqlite_store, embedder)
    replay(citing, ds, user_prefix="cite-", granularity="session")
    learnt = {m.content: m for m in citing.list_memories(user_id="cite-conv-1-a")}
    paris = learnt["The user said: I live in Paris and I teach piano."]
    assert paris.source_message_ids == ["D1:1"] and paris.provenance == "turns"
    cat = next(m for m in learnt.values() if "Miso" in m.content)
    assert cat.source_message_ids == ["D1:3"] and cat.provenance == "turns"

    silent_model = FactPerUserTurnDouble(consolidate=adds_every_fact)
    silent_model.vague = True
    silent = TiMem(sqlite_store, embedder, silent_model)
    replay(silent, ds, user_prefix="whole-", granularity="session")
    vague = next(m for m in silent.list_memories(user_id="whole-conv-1-a") if "(0)" in m.content)
    assert vague.provenance == "session" and set(vague.source_message_ids) == {"D1:1", "D1:2", "D1:3", "D1:4"}

    cited = {q["id"]: q for q in evaluate(citing, ds, user_prefix="cite-", ks=[1, 5])["questions"]}
    result = evaluate(silent, ds, user_prefix="whole-", ks=[1, 5])
    whole = {q["id"]: q for q in result["questions"]}
    q = next(i for i, q in whole.items() if q["evidence"] == ["D1:3"])
    assert cited[q]["hit_at"]["5"] and cited[q]["attribution"] == "hit"
    assert not any(whole[q]["hit_at"].values()) and whole[q]["session_hit_at"]["1"]
    assert whole[q]["attribution"] == "session_hit" and not whole[q]["evidence_learnt"]
    # session-linked questions are counted apart, never in recall_at
    session_only = [q for q in whole.values() if q["session_hit_at"]["5"]]
    assert session_only and result["session_hit_at"]["5"] == pytest.approx(len(session_only) / len(whole))
    assert result["recall_at"]["5"] == pytest.approx(sum(q["hit_at"]["5"] for q in whole.values()) / len(whole))


def test_answers_are_graded_by_the_judge_and_reported_with_its_model(sqlite_store: Store, embedder,
                                                                     files: dict[str, Path]) -> None:
    from timemory import Judgement

    class AnswerAndJudgeDouble(FactPerUserTurnDouble):
        model = "judge-double"

        def stream(self, messages, *, usage=None):
            prompt = messages[-1]["content"]
            yield "Berlin" if "Berlin" in prompt.split("Question:")[0] else "I don't know"

        def parse(self, messages, schema, *, usage=None, max_tokens=None):
            if schema is Judgement:
                prompt = messages[-1]["content"]
                gold = prompt.split("Gold answer: ")[1].split("\n")[0]
                answer = prompt.split("Answer: ")[-1].strip()
                return Judgement(correct=gold.lower() in answer.lower(), reason="compared")
            return super().parse(messages, schema, usage=usage, max_tokens=max_tokens)

    llm = AnswerAndJudgeDouble(consolidate=adds_every_fact)
    tm = TiMem(sqlite_store, embedder, llm)
    ds = load_dataset(files["locomo"], "locomo")
    replay(tm, ds, user_prefix="j-")
    result = evaluate(tm, ds, user_prefix="j-", ks=[5], answer_with=llm)
    acc = result["answer_accuracy"]
    by_q = {q["question"]: q for q in result["questions"]}
    assert by_q["Where does Caroline live now?"]["correct"] is True
    assert by_q["What does Mel paint?"]["correct"] is False  # the double answers "I don't know"
    assert acc["graded"] == result["scored_questions"] and acc["judge_model"] == "judge-double"
    assert acc["accuracy"] == pytest.approx(sum(q["correct"] for q in result["questions"]) / acc["graded"])
    assert "capable" in acc["note"]


VIOLIN = {
    "sessions": [{"date": "2023-01-05", "messages": [
        {"id": "v1", "role": "user", "content": "I play the violin in an orchestra."},
        {"id": "v2", "role": "user", "content": "My sister is called Ana."}]}],
    "questions": [{"id": "violin", "question": "Which instrument does the user play?", "answer": "violin",
                   "evidence": ["v1"]}, {"id": "sister", "question": "Who is the user's sister?", "answer": "Ana",
                                         "evidence": ["v2"]}],
}


def test_misses_are_attributed_at_the_k_asked_for_and_the_distractors_are_counted(
        sqlite_store: Store, embedder, tmp_path: Path) -> None:
    """Hand-counted: the violin memory is learnt but ranks below two memories about instruments; the sister was
    never learnt. With 3 memories, the violin is "found" at k=5 among only 2 others; at k=1 it is a retrieval miss."""
    from timemory.lab import attribute

    path = tmp_path / "violin.json"
    path.write_text(json.dumps(VIOLIN))
    ds = load_dataset(path, "timemory")
    tm = TiMem(sqlite_store, embedder)
    user = ds.user_id("v-", ds.conversations[0])
    tm.add("The user's favourite instrument to hear is the piano.", user_id=user, type="preference")
    tm.add("The user wants to learn to play the drums and the guitar.", user_id=user, type="plan")
    tm.add("The user goes to orchestra rehearsals.", user_id=user, type="activity", source_message_ids=["v1"])

    at5 = evaluate(tm, ds, user_prefix="v-", ks=[1, 10])
    assert at5["attribution_k"] == 5 and "5" in at5["recall_at"]  # the attribution k is always scored
    violin = next(q for q in at5["questions"] if q["id"] == "violin")
    rank = next(i for i, r in enumerate(violin["retrieved"]) if r["evidence_hit"])
    assert rank > 0 and violin["attribution"] == "hit" and violin["distractors"] == 2
    assert at5["attribution"] == {"hit": 1, "extraction_miss_recovered": 0, "session_hit": 0, "retrieval_miss": 0,
                                  "extraction_miss": 1}
    assert at5["distractors"] == {"min": 2, "median": 3}  # the sister's question: all 3 memories are distractors

    at1 = evaluate(tm, ds, user_prefix="v-", ks=[1, 10], attribution_k=1)
    assert at1["attribution"] == {"hit": 0, "extraction_miss_recovered": 0, "session_hit": 0, "retrieval_miss": 1,
                                  "extraction_miss": 1}
    assert attribute(violin, 1) == "retrieval_miss" and attribute(violin, 10) == "hit"

    for i in range(40):  # the same question among many more memories
        tm.add(f"The user visited museum number {i} in Lisbon.", user_id=user, type="activity")
    assert evaluate(tm, ds, user_prefix="v-", ks=[1])["distractors"] == {"min": 42, "median": 43}



def test_a_question_found_only_where_it_was_said_is_an_extraction_miss_recovered(
        sqlite_store: Store, embedder, tmp_path: Path) -> None:
    """Hand-counted: the two messages are stored, only the violin was learnt. Memories alone find 1 of 2 questions;
    episodes find both (2 messages, k = 10); "all" finds both, the sister through her message only."""
    path = tmp_path / "violin.json"
    path.write_text(json.dumps(VIOLIN))
    ds = load_dataset(path, "timemory")
    tm = TiMem(sqlite_store, embedder)
    user = ds.user_id("v-", ds.conversations[0])
    session = tm.sessions.create(user_id=user)
    tm.sessions.add_messages(VIOLIN["sessions"][0]["messages"], user_id=user, session_id=session.id)
    tm.add("The user plays the violin in an orchestra.", user_id=user, type="activity", source_message_ids=["v1"])

    facts_only = evaluate(tm, ds, user_prefix="v-", ks=[10], attribution_k=10)
    assert facts_only["search_scope"] == "memories" and facts_only["recall_at"]["10"] == 0.5
    assert facts_only["attribution"]["extraction_miss"] == 1
    assert facts_only["recall_by_scope"] == {"memories": {"10": 0.5}, "episodes": {"10": 1.0}, "all": {"10": 1.0}}

    both = evaluate(tm, ds, user_prefix="v-", ks=[10], attribution_k=10, scope="all")
    by_id = {q["id"]: q for q in both["questions"]}
    assert both["recall_at"]["10"] == 1.0 and both["search_scope"] == "all"
    assert by_id["sister"]["attribution"] == "extraction_miss_recovered"
    assert by_id["violin"]["attribution"] == "hit"
    assert [r["kind"] for r in by_id["sister"]["retrieved"] if r["evidence_hit"]] == ["episode"]
    assert both["attribution"] == {"hit": 1, "extraction_miss_recovered": 1, "session_hit": 0, "retrieval_miss": 0,
                                   "extraction_miss": 0}
    assert both["recall_by_scope"] == facts_only["recall_by_scope"]  # the same questions, every scope

UPDATES = {
    "sessions": [
        {"date": "2023-01-05", "messages": [{"id": "m1", "role": "user", "content": "I live in Paris."},
                                            {"id": "m2", "role": "user", "content": "I work as a nurse."}]},
        {"date": "2023-06-05", "messages": [{"id": "m3", "role": "user", "content": "I moved to Berlin."},
                                            {"id": "m4", "role": "user", "content": "I am a software developer now."}]},
    ],
    "questions": [
        {"id": "home", "question": "Which city does the user live in?", "answer": "Berlin", "kind": "update",
         "evidence": ["m3"], "old_evidence": ["m1"]},
        {"id": "job", "question": "What is the user's job?", "answer": "software developer", "kind": "update",
         "evidence": ["m4"], "old_evidence": ["m2"]},
        {"id": "plain", "question": "Where did the user move?", "answer": "Berlin", "evidence": ["m3"]},
    ],
}


def test_the_stale_score_counts_what_a_person_counts_by_hand(sqlite_store: Store, embedder, tmp_path: Path) -> None:
    path = tmp_path / "updates.json"
    path.write_text(json.dumps(UPDATES))
    ds = load_dataset(path, "timemory")
    assert [q.old_evidence for q in ds.conversations[0].questions] == [["m1"], ["m2"], []]
    tm = TiMem(sqlite_store, embedder)
    user = ds.user_id("u-", ds.conversations[0])
    # home: the move was never recognised, so "lives in Paris" is still active beside "moved to Berlin"
    tm.add("The user lives in Paris.", user_id=user, type="personal", source_message_ids=["m1"])
    tm.add("The user moved to Berlin.", user_id=user, type="personal", source_message_ids=["m3"])
    # job: the new job outdated the old one, as it should
    nurse = tm.add("The user works as a nurse.", user_id=user, type="professional", source_message_ids=["m2"])
    tm.add("The user is a software developer.", user_id=user, type="professional", source_message_ids=["m4"])
    tm.set_status([nurse.id], user_id=user, status="outdated")

    result = evaluate(tm, ds, user_prefix="u-", ks=[5])

    # 2 update questions: both find their latest statement in the top 5 (4 memories, 3 active); only "home"
    # returns a stale memory, and only "home" has one active
    assert result["stale"] == {"questions": 2, "latest_found_at": {"5": 1.0}, "stale_returned_at": {"5": 0.5},
                               "stale_active": 0.5}
    by_id = {q["id"]: q for q in result["questions"]}
    assert by_id["home"]["update"] == {"latest_at": {"5": True}, "stale_at": {"5": True}, "stale_active": True}
    assert by_id["job"]["update"]["stale_at"] == {"5": False} and "update" not in by_id["plain"]


def test_a_longmemeval_knowledge_update_has_the_earlier_answer_session_as_old_evidence(tmp_path: Path) -> None:
    item = {**LONGMEMEVAL[0], "question_type": "knowledge-update", "answer_session_ids": ["s1", "s2"]}
    path = tmp_path / "ku.json"
    path.write_text(json.dumps([item]))
    [q] = load_dataset(path, "longmemeval").conversations[0].questions
    assert q.old_evidence == ["s1:0", "s1:1"] and q.latest_evidence == ["s2:0", "s2:1"]


def test_an_update_question_without_its_old_statement_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**UPDATES, "questions": [{**UPDATES["questions"][0], "old_evidence": []}]}))
    with pytest.raises(ValidationError, match="old_evidence"):
        load_dataset(path, "timemory")
