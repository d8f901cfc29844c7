"""process_messages with an LLM double passed into TiMem: each consolidation outcome, on SQLite and MariaDB."""

from __future__ import annotations

import numpy as np
import pytest
from doubles import CountingEmbedder, FakeOpenAIServer, ScriptedLLMDouble, short_id_of

from timemory import EmbeddingError, InvalidInputError, TiMem
from timemory.providers import OpenAILLM
from timemory.store import Store

EXCHANGE = [
    {"id": "m1", "role": "user", "content": "I moved to Berlin last month."},
    {"id": "m2", "role": "assistant", "content": "How exciting, welcome to Berlin!"},
]


def snapshot(tm: TiMem, user: str) -> list[tuple]:  # type: ignore[type-arg]
    """Everything observable about a user's memories and their events."""
    mems = tm.list_memories(user_id=user, limit=1000)
    return sorted(
        (m.id, m.content, m.type, m.status, m.superseded_by, tuple(e.event for e in tm.history(m.id, user_id=user)))
        for m in mems
    )


def make(store: Store, embedder, llm) -> tuple[TiMem, CountingEmbedder]:
    counting = CountingEmbedder(embedder)
    return TiMem(store, counting, llm), counting


def test_contradiction_outdates_old_and_links_it(store: Store, embedder, user: str) -> None:
    llm = ScriptedLLMDouble(
        facts=[{"content": "The user lives in Berlin.", "type": "personal"}],
        consolidate=lambda p: [{"fact": 0, "action": "OUTDATE", "memory_id": short_id_of(p, "The user lives in Paris."),
                                "content": None, "reason": "moved from Paris to Berlin"}],
    )
    tm, counting = make(store, embedder, llm)
    old = tm.add("The user lives in Paris.", user_id=user, type="personal")
    counting.calls = 0
    result = tm.process_messages(EXCHANGE, user_id=user)
    assert result.status == "ok", result.errors
    new_id = next(c.memory_id for c in result.changes if c.event == "ADD")
    old_now = tm.get_memory(old.id, user_id=user)
    assert old_now.status == "outdated" and old_now.superseded_by == new_id and old_now.outdated_at is not None
    new = tm.get_memory(new_id, user_id=user)
    assert new.status == "active" and new.content == "The user lives in Berlin."
    assert new.source_message_ids == ["m1", "m2"]
    assert [e.event for e in tm.history(old.id, user_id=user)] == ["ADD", "OUTDATE"]
    assert tm.history(old.id, user_id=user)[1].related_memory_id == new_id
    assert llm.calls == ["FactExtraction", "ConsolidationPlan"]
    assert result.llm_calls == 2 and result.embedding_calls == 1 and counting.calls == 1
    assert {c.memory_id for c in result.candidates} >= {old.id}
    assert set(result.timings) >= {"extract", "embed", "search", "consolidate", "apply"}


def test_duplicate_adds_no_row(store: Store, embedder, user: str) -> None:
    llm = ScriptedLLMDouble(
        facts=[{"content": "The user enjoys drinking green tea.", "type": "preference"}],
        consolidate=lambda p: [{"fact": 0, "action": "NONE", "content": None, "reason": "already known",
                                "memory_id": short_id_of(p, "The user likes green tea.")}],
    )
    tm, _ = make(store, embedder, llm)
    tm.add("The user likes green tea.", user_id=user, type="preference")
    before = snapshot(tm, user)
    result = tm.process_messages(EXCHANGE, user_id=user)
    assert result.status == "ok" and result.changes == []
    assert snapshot(tm, user) == before


def test_exact_restatement_needs_no_consolidation_call(store: Store, embedder, user: str) -> None:
    llm = ScriptedLLMDouble(facts=[{"content": "The user likes green tea.", "type": "preference"}])
    tm, _ = make(store, embedder, llm)
    tm.add("The user likes green tea.", user_id=user, type="preference")
    result = tm.process_messages(EXCHANGE, user_id=user)
    assert result.changes == [] and llm.calls == ["FactExtraction"]


def test_update_merges_text_reembeds_and_records(store: Store, embedder, user: str) -> None:
    merged = "The user plays tennis every Sunday at a club in Lyon."
    llm = ScriptedLLMDouble(
        facts=[{"content": "The user plays tennis at a club in Lyon.", "type": "activity"}],
        consolidate=lambda p: [{"fact": 0, "action": "UPDATE", "content": merged, "reason": "adds where",
                                "memory_id": short_id_of(p, "The user plays tennis every Sunday.")}],
    )
    tm, _ = make(store, embedder, llm)
    m = tm.add("The user plays tennis every Sunday.", user_id=user, type="activity")
    result = tm.process_messages(EXCHANGE, user_id=user)
    assert result.status == "ok"
    assert [(c.event, c.memory_id) for c in result.changes] == [("UPDATE", m.id)]
    assert tm.get_memory(m.id, user_id=user).content == merged
    assert tm.count_memories(user_id=user) == 1
    hit = tm.search("tennis club in Lyon", user_id=user, limit=1)[0]
    assert hit.memory.id == m.id
    expected = embedder.embed([merged])[0]
    assert hit.scores.vector == pytest.approx(float(embedder.embed(["tennis club in Lyon"])[0] @ expected), abs=1e-4)
    events = tm.history(m.id, user_id=user)
    assert [e.event for e in events] == ["ADD", "UPDATE"] and events[1].actor == "pipeline"
    assert events[1].source_message_ids == ["m1", "m2"]


def test_unrelated_memories_untouched_and_one_llm_call(store: Store, embedder, user: str) -> None:
    llm = ScriptedLLMDouble(facts=[{"content": "The user is allergic to peanuts.", "type": "health"}])
    tm, counting = make(store, embedder, llm)
    tm.add("The user works as a pilot.", user_id=user, type="professional")
    before = snapshot(tm, user)
    counting.calls = 0
    result = tm.process_messages(EXCHANGE, user_id=user)
    assert llm.calls == ["FactExtraction"] and result.llm_calls == 1 and counting.calls == 1
    after = snapshot(tm, user)
    assert all(row in after for row in before)
    assert tm.count_memories(user_id=user) == 2


def test_unknown_ids_and_orphan_outdate_are_rejected(store: Store, embedder, user: str) -> None:
    def decide(p: str) -> list[dict]:  # type: ignore[type-arg]
        sid = short_id_of(p, "The user lives in Paris.")
        return [
            {"fact": 0, "action": "UPDATE", "memory_id": 999, "content": "x", "reason": "hallucinated id"},
            {"fact": 7, "action": "OUTDATE", "memory_id": sid, "content": None, "reason": "no such fact"},
            {"fact": 0, "action": "OUTDATE", "memory_id": None, "content": None, "reason": "no target"},
        ]

    llm = ScriptedLLMDouble(facts=[{"content": "The user lives in Berlin.", "type": "personal"}], consolidate=decide)
    tm, _ = make(store, embedder, llm)
    paris = tm.add("The user lives in Paris.", user_id=user, type="personal")
    result = tm.process_messages(EXCHANGE, user_id=user)
    rejected = [d for d in result.decisions if not d.accepted]
    assert len(rejected) == 3 and all(d.rejected_because for d in rejected)
    assert tm.get_memory(paris.id, user_id=user).status == "active"  # nothing outdated without a valid decision
    assert [e.event for e in tm.history(paris.id, user_id=user)] == ["ADD"]
    # the new fact is not lost: it is kept as a new memory
    assert [c.event for c in result.changes] == ["ADD"]
    assert {m.content for m in tm.list_memories(user_id=user)} == {"The user lives in Paris.",
                                                                   "The user lives in Berlin."}


def test_malformed_model_output_changes_nothing(store: Store, embedder, user: str) -> None:
    """Real OpenAI client over HTTP; the server answers extraction, then garbage for consolidation (twice)."""

    def handler(body: dict) -> tuple[int, str]:  # type: ignore[type-arg]
        if "NEW FACTS" in body["messages"][1]["content"]:
            return 200, '{"decisions": [{"fact": "zero", "action": "DESTROY"'
        if body["messages"][-1]["role"] == "user" and "could not be used" in body["messages"][-1]["content"]:
            return 200, "I'm sorry, I cannot do that."
        return 200, '{"facts": [{"content": "The user lives in Berlin.", "type": "personal"}]}'

    with FakeOpenAIServer(handler) as server:
        llm = OpenAILLM.connect(api_key=None, base_url=server.base_url, model="fake", max_retries=0)
        tm, _ = make(store, embedder, llm)
        tm.add("The user lives in Paris.", user_id=user, type="personal")
        before = snapshot(tm, user)
        result = tm.process_messages(EXCHANGE, user_id=user)
    assert result.status == "failed"
    assert any("llm_output" in e and "ConsolidationPlan" in e for e in result.errors)
    assert result.facts and result.llm_calls == 3  # extract, consolidate, one repair
    assert snapshot(tm, user) == before
    runs = store.runs.list(user)
    assert runs[0].run_id == result.run_id and runs[0].status == "failed"


def test_embedder_failure_changes_nothing(store: Store, embedder, user: str) -> None:
    llm = ScriptedLLMDouble(facts=[{"content": "The user lives in Berlin.", "type": "personal"}])
    tm, counting = make(store, embedder, llm)
    tm.add("The user lives in Paris.", user_id=user, type="personal")
    before = snapshot(tm, user)
    counting.fail_with = EmbeddingError("embedding service down")
    result = tm.process_messages(EXCHANGE, user_id=user)
    assert result.status == "failed" and "embedding service down" in result.errors[0]
    counting.fail_with = None
    assert snapshot(tm, user) == before
    assert tm.process_messages(EXCHANGE, user_id=user).status == "ok"  # the next run works


def test_trace_is_saved_and_counts_tokens(store: Store, embedder, user: str) -> None:
    llm = ScriptedLLMDouble(facts=[{"content": "The user collects vinyl records.", "type": "activity"}])
    tm, _ = make(store, embedder, llm)
    result = tm.process_messages(EXCHANGE, user_id=user, session_id=None)
    saved = store.runs.list(user)[0]
    assert saved.run_id == result.run_id and saved.changes == result.changes
    assert saved.prompt_tokens == 100 and saved.completion_tokens == 20


def test_no_facts_is_an_empty_run(store: Store, embedder, user: str) -> None:
    tm, counting = make(store, embedder, ScriptedLLMDouble(facts=[]))
    result = tm.process_messages(EXCHANGE, user_id=user)
    assert result.status == "empty" and result.changes == [] and counting.calls == 0


def test_bad_messages_are_validation_errors(sqlite_store: Store, embedder, user: str) -> None:
    tm, _ = make(sqlite_store, embedder, ScriptedLLMDouble())
    for bad in ([], [{"role": "robot", "content": "x"}], [{"role": "user", "content": "  "}],
                [{"role": "user", "content": "x" * 40_000}], [{"role": "user", "content": "x", "created_at": "soon"}]):
        with pytest.raises(InvalidInputError):
            tm.process_messages(bad, user_id=user)
    assert tm.count_memories(user_id=user) == 0


def test_session_dates_become_memory_times(sqlite_store: Store, embedder, user: str) -> None:
    llm = ScriptedLLMDouble(facts=[{"content": "The user owns a bike.", "type": "personal"}])
    tm, _ = make(sqlite_store, embedder, llm)
    msgs = [{**m, "created_at": "2025-03-04T10:00:00+00:00"} for m in EXCHANGE]
    result = tm.process_messages(msgs, user_id=user)
    mem = tm.get_memory(result.changes[0].memory_id, user_id=user)
    assert mem.created_at.isoformat().startswith("2025-03-04T10:00")


def test_counting_per_exchange_over_a_conversation(sqlite_store: Store, embedder, user: str) -> None:
    """≤ 2 LLM calls and ≤ 1 embedding call per exchange (no merges happen here)."""
    facts = iter([
        [{"content": "The user lives in Paris.", "type": "personal"}],
        [{"content": "The user lives in Berlin.", "type": "personal"}],
        [{"content": "The user likes techno music.", "type": "preference"}],
    ])

    class Llm(ScriptedLLMDouble):
        def parse(self, messages, schema, *, usage=None, max_tokens=None):
            if schema.__name__ == "FactExtraction":
                self.facts = next(facts)
            return super().parse(messages, schema, usage=usage)

    llm = Llm(consolidate=lambda p: [{"fact": 0, "action": "ADD", "memory_id": None, "content": None, "reason": "new"}])
    tm, counting = make(sqlite_store, embedder, llm)
    for _ in range(3):
        counting.calls, before_llm = 0, len(llm.calls)
        result = tm.process_messages(EXCHANGE, user_id=user)
        assert len(llm.calls) - before_llm == result.llm_calls <= 2
        assert counting.calls == result.embedding_calls <= 1
    assert np.isfinite(result.timings["apply"])


@pytest.mark.parametrize(("said", "kept"), [
    ("I moved to Berlin last month.", ["The user lives in Berlin."]),
    ("I'm a nurse in Lyon and I moved to Berlin.", ["The user lives in Berlin.", "The user works as a nurse in Lyon."]),
])
def test_a_copied_prompt_example_is_dropped_unless_the_user_said_it(
    sqlite_store: Store, embedder, user: str, said: str, kept: list[str]
) -> None:
    llm = ScriptedLLMDouble(facts=[{"content": "The user works as a nurse in Lyon.", "type": "professional"},
                                   {"content": "The user lives in Berlin.", "type": "personal"}])
    tm = TiMem(sqlite_store, embedder, llm)
    result = tm.process_messages([{"role": "user", "content": said}], user_id=user)
    assert sorted(f.content for f in result.facts) == sorted(kept)
    assert sorted(m.content for m in tm.list_memories(user_id=user)) == sorted(kept)
    sent = llm.prompts[0]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert said in sent[-1]["content"]


def test_a_fact_taken_from_the_assistant_s_reply_is_dropped(sqlite_store: Store, embedder, user: str) -> None:
    llm = ScriptedLLMDouble(facts=[
        {"content": "The user is delighted to hear about your work as a nurse in Paris.", "type": "personal"},
        {"content": "The user recommends the Musée d'Orsay and the Louvre.", "type": "preference"},
        {"content": "The user is vegetarian.", "type": "preference"},  # inferred from the user's own words: kept
        {"content": "The user is moving to Paris.", "type": "plan"}])
    tm = TiMem(sqlite_store, embedder, llm)
    exchange = [{"role": "user", "content": "I don't eat meat, and I am moving to Paris soon!"},
                {"role": "assistant", "content": "Delighted to hear about your work as a nurse! In Paris, visit the "
                                                 "Musée d'Orsay and the Louvre."}]
    result = tm.process_messages(exchange, user_id=user)
    assert [f.content for f in result.facts] == ["The user is vegetarian.", "The user is moving to Paris."]
    assert "Only what the USER said" in llm.prompts[0][0]["content"]


def test_the_consolidation_answer_cap_grows_with_the_facts_asked(sqlite_store: Store, embedder, user: str) -> None:
    from timemory.core._answers import answer_cap, extraction_schema
    from timemory.core._consolidation import consolidation_cap

    facts = [{"content": f"The user has hobby number {n}: {word}.", "type": "activity"}
             for n, word in enumerate(["chess", "climbing", "baking", "sailing", "pottery", "karate"])]
    llm = ScriptedLLMDouble(facts=facts, consolidate=lambda p: [
        {"fact": i, "action": "ADD", "memory_id": None, "content": None, "reason": "new"} for i in range(6)])
    tm, _ = make(sqlite_store, embedder, llm)
    for word in ["chess", "climbing", "baking", "sailing", "pottery", "karate"]:
        tm.add(f"The user likes {word}.", user_id=user, type="activity")
    result = tm.process_messages(EXCHANGE, user_id=user)
    assert result.status == "ok", result.errors
    assert llm.calls == ["FactExtraction", "ConsolidationPlan"]
    assert llm.caps == [answer_cap(extraction_schema()), consolidation_cap(6, 6)]
    assert consolidation_cap(1, 5) < consolidation_cap(6, 6) < consolidation_cap(20, 20)
    assert consolidation_cap(20, 20) > 1024


@pytest.mark.parametrize("reads_replies", [True, False])
def test_a_model_that_does_not_read_replies_gets_only_the_user_s_lines(store: Store, embedder, user: str,
                                                                      reads_replies: bool) -> None:
    llm = ScriptedLLMDouble(facts=[{"content": "The user works as a nurse.", "type": "professional"}])
    llm.reads_replies = reads_replies  # type: ignore[attr-defined]
    tm, _ = make(store, embedder, llm)
    result = tm.process_messages([{"role": "user", "content": "I work as a nurse in Oslo."},
                                  {"role": "assistant", "content": "Night shifts must be tiring!"}], user_id=user)
    asked = llm.prompts[0][-1]["content"]
    assert "user: I work as a nurse in Oslo." in asked
    assert ("assistant: Night shifts must be tiring!" in asked) is reads_replies
    assert len(result.source_message_ids) == 2  # the run still comes from both messages
