"""The lab: dataset readers (own files in each format), replay with dates and resume, experiments, evaluation."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from doubles import ScriptedLLMDouble

from timemory import FactExtraction, InvalidInputError, TiMem
from timemory.lab import evaluate, load_dataset, record_experiment, replay, units_of
from timemory.lab._datasets import parse_date
from timemory.store import Store

LOCOMO = [{
    "sample_id": "conv-1",
    "conversation": {
        "speaker_a": "Caroline", "speaker_b": "Mel",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Caroline", "dia_id": "D1:1", "text": "I live in Paris and I teach piano."},
            {"speaker": "Mel", "dia_id": "D1:2", "text": "I paint landscapes on weekends."},
            {"speaker": "Caroline", "dia_id": "D1:3", "text": "I adopted a cat named Miso.",
             "img_url": ["http://x/cat.jpg"], "blip_caption": "a grey cat on a sofa"},
            {"speaker": "Mel", "dia_id": "D1:4", "text": "Lovely (small talk)."},
        ],
        "session_2_date_time": "10:00 am on 2 June, 2023",
        "session_2": [
            {"speaker": "Caroline", "dia_id": "D2:1", "text": "I moved to Berlin last week."},
            {"speaker": "Mel", "dia_id": "D2:2", "text": "How exciting (small talk)."},
        ],
        "session_3_date_time": "9:30 pm on 3 July, 2023",
        "session_3": [
            {"speaker": "Mel", "dia_id": "D3:1", "text": "See you on Friday (small talk)."},
            {"speaker": "Caroline", "dia_id": "D3:2", "text": "Bye for now (small talk)."},
        ],
    },
    "qa": [
        {"question": "Where does Caroline live now?", "answer": "Berlin", "evidence": ["D2:1"], "category": 1},
        {"question": "What does Mel paint?", "answer": "landscapes", "evidence": ["D1:2"], "category": 2},
        {"question": "What did Mel say about the move?", "answer": "exciting", "evidence": ["D2:2"], "category": 2},
        {"question": "Where does Caroline live?", "answer": "cat", "evidence": ["D1:3"], "category": 3},
        {"question": "When do they meet again?", "answer": "Friday", "evidence": ["D3:1"], "category": 4},
        {"question": "Unanswerable?", "adversarial_answer": "no", "evidence": [], "category": 5},
    ],
}]

LONGMEMEVAL = [{
    "question_id": "q42", "question_type": "single-session-user", "question": "Which instrument does the user play?",
    "answer": "cello", "question_date": "2023/06/01 (Thu) 10:00",
    "haystack_session_ids": ["s2", "s1"], "haystack_dates": ["2023/05/21 (Sun) 09:00", "2023/05/20 (Sat) 02:21"],
    "haystack_sessions": [
        [{"role": "user", "content": "I play the cello in an orchestra.", "has_answer": True},
         {"role": "assistant", "content": "Wonderful!"}],
        [{"role": "user", "content": "Hello there (small talk)."}, {"role": "assistant", "content": "Hi!"}],
    ],
    "answer_session_ids": ["s2"],
}]


class FactPerUserTurnDouble(ScriptedLLMDouble):
    """Extracts one fact per user line of the exchange (none for small talk); consolidation adds every fact. With
    ``vague`` on, the facts are worded so that none resembles the line it came from."""

    vague = False

    def parse(self, messages, schema, *, usage=None, max_tokens=None):
        if issubclass(schema, FactExtraction):
            self.calls.append(schema.__name__)
            self.prompts.append(messages)
            if usage is not None:
                usage.add(100, 20)
            conversation = messages[-1]["content"]
            lines = [ln[len("user: "):] for ln in conversation.splitlines() if ln.startswith("user: ")]
            return FactExtraction.model_validate({"facts": [
                {"content": f"The user enjoys quiet evenings ({n})." if self.vague else f"The user said: {text}",
                 "type": "personal"} for n, text in enumerate(lines) if "small talk" not in text]})
        return super().parse(messages, schema, usage=usage)


def adds_every_fact(prompt: str) -> list[dict[str, Any]]:
    facts = re.findall(r"^(\d+)\. \[", prompt.split("EXISTING MEMORIES")[0], flags=re.M)
    return [{"fact": int(i), "action": "ADD", "memory_id": None, "content": None, "reason": "new"} for i in facts]


def dataset_files(folder: Path) -> dict[str, Path]:
    """The LoCoMo and LongMemEval samples above, each written to a file of its format."""
    out = {}
    for name, data in (("locomo", LOCOMO), ("longmemeval", LONGMEMEVAL)):
        out[name] = folder / f"{name}.json"
        out[name].write_text(json.dumps(data))
    return out


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return dataset_files(tmp_path)


def make_tm(store: Store, embedder) -> TiMem:
    return TiMem(store, embedder, FactPerUserTurnDouble(consolidate=adds_every_fact))


def test_dates_of_each_format() -> None:
    assert parse_date("1:56 pm on 8 May, 2023") == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert parse_date("12:05 am on 1 Jan, 2024") == datetime(2024, 1, 1, 0, 5, tzinfo=UTC)
    assert parse_date("2023/05/20 (Sat) 02:21") == datetime(2023, 5, 20, 2, 21, tzinfo=UTC)
    assert parse_date("2023-05-20T02:21:00") == datetime(2023, 5, 20, 2, 21, tzinfo=UTC)


def test_locomo_is_read_once_per_speaker_with_dia_ids(files: dict[str, Path]) -> None:
    ds = load_dataset(files["locomo"], "locomo")
    assert [c.key for c in ds.conversations] == ["conv-1-a", "conv-1-b"]
    a, b = ds.conversations
    assert [(t.id, t.role) for t in a.sessions[0].messages] == [("D1:1", "user"), ("D1:2", "assistant"),
                                                             ("D1:3", "user"), ("D1:4", "assistant")]
    assert [t.role for t in b.sessions[0].messages] == ["assistant", "user", "assistant", "user"]
    assert "a grey cat on a sofa" in a.sessions[0].messages[2].content
    assert a.sessions[1].date == datetime(2023, 6, 2, 10, 0, tzinfo=UTC)
    assert [q.evidence for q in a.questions] == [["D2:1"], ["D1:2"], ["D2:2"], ["D1:3"], ["D3:1"], []]
    assert len(load_dataset(files["locomo"], "locomo", speaker="b").conversations) == 1


def test_longmemeval_sessions_are_ordered_by_date_and_evidence_is_the_answer_session(files: dict[str, Path]) -> None:
    ds = load_dataset(files["longmemeval"], "longmemeval")
    [conv] = ds.conversations
    assert [s.key for s in conv.sessions] == ["s1", "s2"]
    assert conv.questions[0].evidence == ["s2:0", "s2:1"] and conv.questions[0].category == "single-session-user"


@pytest.mark.parametrize(("fmt", "data", "message"), [
    ("locomo", [{"conversation": {"speaker_a": "A", "speaker_b": "B", "session_1": [],
                                  "session_1_date_time": "yesterday"}}], "sample-0.*session_1_date_time.*yesterday"),
    ("locomo", [{"sample_id": "c9", "conversation": {"speaker_a": "A", "speaker_b": "B", "session_1_date_time":
                 "1:56 pm on 8 May, 2023", "session_1": [{"speaker": "Z", "dia_id": "D1:1", "text": "hi"}]}}],
     r"sample c9\.conversation\.session_1\[0\].*speaker 'Z'"),
    ("locomo", [{"sample_id": "c9", "conversation": {"speaker_a": "A"}}], "missing field 'speaker_b'"),
    ("longmemeval", [{"question_id": "q1", "question": "?", "haystack_session_ids": ["s1"], "haystack_dates": [],
                      "haystack_sessions": [[]]}], "item q1.*differ in length"),
    ("longmemeval", {"not": "a list"}, "expected a list"),
    ("timemory", [{"messages": [{"role": "robot", "content": "x"}]}], r"session 0\.messages\[0\].*robot"),
])
def test_malformed_files_name_the_file_the_item_and_the_field(tmp_path: Path, fmt: str, data: Any,
                                                                message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidInputError, match=message) as err:
        load_dataset(path, fmt)
    assert str(path) in str(err.value)


def test_replay_uses_session_dates_and_evaluation_matches_hand_computed_figures(
    store: Store, embedder, files: dict[str, Path]
) -> None:
    tm = make_tm(store, embedder)
    ds = load_dataset(files["locomo"], "locomo")
    report = replay(tm, ds, user_prefix="exp-")
    assert report.processed == report.total == len(units_of(ds, "exp-")) and not report.failed
    paris = next(m for m in tm.list_memories(user_id="exp-conv-1-a") if "Paris" in m.content)
    assert paris.created_at == datetime(2023, 5, 8, 13, 56, tzinfo=UTC) and paris.source_message_ids[0] == "D1:1"
    assert tm.state_at(datetime(2023, 5, 31, tzinfo=UTC), user_id="exp-conv-1-a") and not any(
        "Berlin" in m.content for m in tm.state_at(datetime(2023, 5, 31, tzinfo=UTC), user_id="exp-conv-1-a"))

    result = evaluate(tm, ds, user_prefix="exp-", ks=[1, 5])
    by_q = {q.question: q for q in result.questions}
    assert result.scored_questions == 5  # the question without evidence is not scored
    assert by_q["Where does Caroline live now?"].attribution == "hit"  # D2:1 was learnt and found
    assert by_q["What does Mel paint?"].attribution == "hit"  # Mel's own replay learnt D1:2
    # provenance is per exchange: Caroline's fact from D2:1 was learnt from the exchange that holds D2:2 too
    assert by_q["What did Mel say about the move?"].evidence == ["D2:2"]
    assert by_q["When do they meet again?"].attribution == "extraction_miss"  # small talk on both sides
    assert by_q["Where does Caroline live?"].hit_at["1"] is False  # D1:3 (the cat) is not what the question finds
    assert result.attribution["extraction_miss"] == 1
    assert result.recall_at["5"] == pytest.approx(sum(q.hit_at["5"] for q in result.questions) / 5)
    active = sum(m.status == "active" for u in ("exp-conv-1-a", "exp-conv-1-b") for m in tm.list_memories(user_id=u))
    assert result.per_category["4"].to_json() == {
        "scored_questions": 1, "recall_at": {"1": 0.0, "5": 0.0}, "session_hit_at": {"1": 0.0, "5": 0.0},
        "attribution_k": 5, "distractors": {"min": active, "median": active},
        "attribution": {"hit": 0, "extraction_miss_recovered": 0, "session_hit": 0, "retrieval_miss": 0,
                        "extraction_miss": 1},
        # nothing was learnt from its evidence, so no rank, no gain, no session found, and an interval of one zero
        "mrr": 0.0, "ndcg_at": {"1": 0.0, "5": 0.0}, "all_evidence_recall_at": {"1": 0.0, "5": 0.0},
        "session_recall_at": {"1": 0.0, "5": 0.0}, "recall_ci": {"1": [0.0, 0.0], "5": [0.0, 0.0]}}
    assert result.memories.total == len(tm.list_memories(user_id="exp-conv-1-a")) + len(
        tm.list_memories(user_id="exp-conv-1-b"))


def test_an_interrupted_replay_resumes_to_the_same_state(sqlite_store: Store, embedder,
                                                         files: dict[str, Path]) -> None:
    tm = make_tm(sqlite_store, embedder)
    ds = load_dataset(files["locomo"], "locomo")
    whole = replay(tm, ds, user_prefix="whole-")
    calls = iter(range(100))
    first = replay(tm, ds, user_prefix="cut-", should_stop=lambda: next(calls) >= 2)
    assert first.stopped and first.processed == 2
    second = replay(tm, ds, user_prefix="cut-")
    assert second.skipped == 2 and second.processed == whole.processed - 2
    assert replay(tm, ds, user_prefix="cut-").processed == 0  # a third run has nothing left to do

    def state(prefix: str) -> list[tuple]:  # type: ignore[type-arg]
        return sorted((m.user_id.removeprefix(prefix), m.content, m.type, m.status, tuple(m.source_message_ids),
                       m.created_at) for c in ds.conversations for m in tm.list_memories(user_id=f"{prefix}{c.key}"))

    assert state("cut-") == state("whole-")
    assert len(tm.sessions.list(user_id="cut-conv-1-a")) == 3  # sessions found again, not duplicated


def test_failed_exchanges_are_listed_and_retried(sqlite_store: Store, embedder, files: dict[str, Path]) -> None:
    from timemory import LLMError

    class FlakyDouble(FactPerUserTurnDouble):
        fail = True

        def parse(self, messages, schema, *, usage=None, max_tokens=None):
            if self.fail and "Berlin" in messages[-1]["content"]:
                raise LLMError("the model looped to the token cap")
            return super().parse(messages, schema, usage=usage)

    llm = FlakyDouble(consolidate=adds_every_fact)
    tm = TiMem(sqlite_store, embedder, llm)
    ds = load_dataset(files["locomo"], "locomo", speaker="a")
    report = replay(tm, ds, user_prefix="f-")
    assert len(report.failed) == 1 and "token cap" in report.failed[0][2]
    again = replay(tm, ds, user_prefix="f-")
    assert again.processed == 0 and len(again.failed) == 1  # listed, not silently rerun
    llm.fail = False
    retried = replay(tm, ds, user_prefix="f-", retry_failed=True)
    assert retried.processed == 1 and not retried.failed
    assert any("Berlin" in m.content for m in tm.list_memories(user_id="f-conv-1-a"))


def test_session_granularity_runs_once_per_session(sqlite_store: Store, embedder, files: dict[str, Path]) -> None:
    tm = make_tm(sqlite_store, embedder)
    ds = load_dataset(files["longmemeval"], "longmemeval")
    report = replay(tm, ds, user_prefix="s-", granularity="session")
    assert report.processed == 2
    assert len(tm.list_runs(user_id="s-q42")) == 2
    result = evaluate(tm, ds, user_prefix="s-", ks=[1])
    assert result.recall_at["1"] == 1.0  # a session of one exchange: its memories come from that exchange


def test_experiments_record_configuration_and_counts(sqlite_store: Store, embedder, files: dict[str, Path]) -> None:
    from timemory.lab import configuration

    tm = make_tm(sqlite_store, embedder)
    ds = load_dataset(files["locomo"], "locomo")
    replay(tm, ds, user_prefix="e1-")
    config = configuration(tm, granularity="exchange", base_url="http://gpu-box:8000/v1")
    exp = record_experiment(tm, ds, name="baseline", user_prefix="e1-", config=config, status="done",
                            wall_seconds=1.5)
    assert exp.config["llm_host"] == "gpu-box" and len(exp.config["prompts_sha256"]) == 16
    assert exp.counts["exchanges"] == len(units_of(ds, "e1-")) and exp.counts["llm_calls"] > 0
    assert exp.dataset_sha256 == ds.sha256
    again = record_experiment(tm, ds, name="baseline", user_prefix="e1-", config=config, status="done",
                              wall_seconds=2.0)
    assert again.wall_seconds == pytest.approx(3.5) and again.id == exp.id
    with pytest.raises(InvalidInputError, match="another experiment name"):
        record_experiment(tm, ds, name="baseline", user_prefix="e2-", config=config, status="done")
    assert [e.name for e in tm.list_experiments()] == ["baseline"]


def test_an_experiment_stores_its_scores_as_their_json_and_reads_them_back(sqlite_store: Store, embedder,
                                                                          files: dict[str, Path]) -> None:
    from timemory.lab import evaluation

    tm = make_tm(sqlite_store, embedder)
    ds = load_dataset(files["locomo"], "locomo")
    replay(tm, ds, user_prefix="e1-")
    result = evaluate(tm, ds, user_prefix="e1-", ks=[1, 5])
    exp = record_experiment(tm, ds, name="scored", user_prefix="e1-", config={}, status="done", metrics=result)
    assert exp.metrics == result.to_json() and evaluation(exp) == result
    kept = record_experiment(tm, ds, name="scored", user_prefix="e1-", config={}, status="done")  # no new scores
    assert kept.metrics == exp.metrics
    assert evaluation(record_experiment(tm, ds, name="unscored", user_prefix="e1-", config={}, status="done")) is None


def test_an_older_experiment_s_metrics_are_read_with_what_they_lack_left_empty() -> None:
    """The shape evaluate stored before misses were attributed at a chosen k, before session hits, distractors,
    scopes and episodes: three kinds of attribution, questions without evidence_learnt, an int category."""
    from timemory.lab import EvaluationResult

    old = {"scored_questions": 1, "recall_at": {"1": 0.0, "5": 1.0},
           "attribution": {"hit": 1, "retrieval_miss": 0, "extraction_miss": 0}, "search_mode": "vector",
           "per_category": {"1": {"scored_questions": 1, "recall_at": {"1": 0.0, "5": 1.0},
                                  "attribution": {"hit": 1, "retrieval_miss": 0, "extraction_miss": 0}}},
           "memories": {"total": 3, "active": 3, "per_100_turns": 50.0},
           "cost": {"llm_calls_per_exchange": 2.0, "tokens_per_exchange": 120.0, "runs": 2},
           "questions": [{"id": "q1", "question": "Where?", "answer": "Berlin", "category": 1, "evidence": ["D2:1"],
                          "hit_at": {"1": False, "5": True}, "attribution": "hit",
                          "retrieved": [{"memory_id": "m1", "user_id": "u", "content": "Berlin", "score": 0.5,
                                         "evidence_hit": True}]}]}
    result = EvaluationResult.from_stored(old)
    assert result is not None and result.recall_at == {"1": 0.0, "5": 1.0} and result.search_mode == "vector"
    assert result.search_scope is None and result.recall_by_scope == {} and result.stale is None
    assert result.attribution_k is None and result.distractors.median is None
    [q] = result.questions
    assert q.category == "1" and q.evidence_learnt is None and q.session_hit_at == {} and q.update is None
    assert not q.scored_at(5)  # nothing to attribute a miss with
    assert q.retrieved[0].kind == "memory" and q.retrieved[0].session_hit is False
    assert result.per_category["1"].attribution == {"hit": 1, "retrieval_miss": 0, "extraction_miss": 0}
    assert EvaluationResult.from_stored({}) is None


def test_a_cached_rerun_asks_the_model_nothing_and_gives_the_same_memories(store: Store, embedder,
                                                                           files: dict[str, Path]) -> None:
    from timemory.providers import CachedLLM

    inner = FactPerUserTurnDouble(consolidate=adds_every_fact)
    cached = CachedLLM(inner, store.answers)
    tm = TiMem(store, embedder, cached)
    ds = load_dataset(files["locomo"], "locomo", speaker="a")
    replay(tm, ds, user_prefix="c1-")
    asked = len(inner.calls)
    assert asked > 0 and cached.hits == 0
    replay(tm, ds, user_prefix="c2-")  # same data, same prompts: every answer comes from the cache
    assert len(inner.calls) == asked and cached.hits == cached.misses == asked

    def state(user: str) -> list[tuple]:  # type: ignore[type-arg]
        return sorted((m.content, m.type, m.status,
                       tuple(m.source_message_ids)) for m in tm.list_memories(user_id=user))

    assert state("c1-conv-1-a") == state("c2-conv-1-a")


def test_a_replay_s_progress_names_its_unit_and_gives_no_rate_before_the_first_is_done(files: dict[str, Path]) -> None:
    from timemory.lab import ReplayJob

    ds = load_dataset(files["locomo"], "locomo")
    job = ReplayJob(experiment="x", dataset=ds, user_prefix="x-", granularity="session", total=3, status="running")
    assert job.unit == "sessions" and job.rate_per_min is None and job.eta_seconds is None  # not "0.0/min"
    job.started_at -= 60
    job.processed = job.done = 2
    assert job.rate_per_min == pytest.approx(2.0, rel=0.01) and job.eta_seconds == pytest.approx(30, rel=0.02)
