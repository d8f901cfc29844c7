"""Structured answers bounded per request: what each request's schema allows, and a cap no valid answer reaches."""

from __future__ import annotations

import json

import jsonschema
import pytest

from timemory import ConsolidationPlan, FactExtraction
from timemory.core import FACT_CHARS, REASON_CHARS, request
from timemory.core._answers import (
    EXTRACTED_FACTS,
    answer_cap,
    consolidation_schema,
    extraction_schema,
    largest_answer,
    reflection_schema,
)
from timemory.providers._llm import openai_strict_subset, strict_json_schema


def decision(fact: int, action: str = "NONE", memory_id: int | None = 2, content: str | None = None,
             reason: str = "the same") -> dict[str, object]:
    return {"fact": fact, "action": action, "memory_id": memory_id, "content": content, "reason": reason}


def allowed(schema: dict[str, object], answer: dict[str, object]) -> bool:
    try:
        jsonschema.validate(answer, schema, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError:
        return False
    return True


def test_consolidation_allows_exactly_one_decision_per_fact_asked_in_order() -> None:
    schema = consolidation_schema([0, 2], [1, 2, 3])
    assert allowed(schema, {"decisions": [decision(0), decision(2, "ADD", None)]})
    assert not allowed(schema, {"decisions": [decision(0), decision(0)]})  # a second decision for the same fact
    assert not allowed(schema, {"decisions": [decision(0)]})  # a fact left out
    assert not allowed(schema, {"decisions": [decision(0), decision(2), decision(2)]})  # one too many
    assert not allowed(schema, {"decisions": [decision(2), decision(0)]})  # out of order
    assert not allowed(schema, {"decisions": [decision(0), decision(1)]})  # a fact not asked about


def test_consolidation_allows_only_shown_ids_known_actions_and_bounded_texts() -> None:
    schema = consolidation_schema([0], [1, 2, 3])
    assert allowed(schema, {"decisions": [decision(0, "UPDATE", 3, "x" * FACT_CHARS, "r" * REASON_CHARS)]})
    assert not allowed(schema, {"decisions": [decision(0, memory_id=4)]})  # an id that was not shown
    assert not allowed(schema, {"decisions": [decision(0, action="DELETE")]})
    assert not allowed(schema, {"decisions": [decision(0, reason="r" * (REASON_CHARS + 1))]})  # an over-long reason
    assert not allowed(schema, {"decisions": [decision(0, "UPDATE", 3, "x" * (FACT_CHARS + 1))]})
    assert not allowed(schema, {"decisions": [{**decision(0), "extra": 1}]})
    assert not allowed(consolidation_schema([0], []), {"decisions": [decision(0, memory_id=1)]})  # none shown
    assert allowed(consolidation_schema([0], []), {"decisions": [decision(0, "ADD", None)]})


def test_each_decision_has_the_shape_of_its_action() -> None:
    schema = consolidation_schema([0], [1, 2])
    assert allowed(schema, {"decisions": [decision(0, "OUTDATE", 1)]})
    assert not allowed(schema, {"decisions": [decision(0, "OUTDATE", None)]})  # outdates nothing
    assert not allowed(schema, {"decisions": [decision(0, "ADD", 1)]})  # an ADD names no memory
    assert not allowed(schema, {"decisions": [decision(0, "NONE", 1, "merged text")]})  # only UPDATE has text
    assert not allowed(schema, {"decisions": [decision(0, "UPDATE", 1, None)]})  # an UPDATE without its text


def test_extraction_allows_a_bounded_number_of_bounded_facts() -> None:
    schema = extraction_schema()
    fact = {"content": "The user lives in Porto.", "type": "personal", "subject": "home"}
    assert allowed(schema, {"facts": []}) and allowed(schema, {"facts": [fact] * EXTRACTED_FACTS})
    assert allowed(schema, {"facts": [{**fact, "subject": None}]})  # most facts have no subject key
    assert not allowed(schema, {"facts": [{**fact, "subject": "where she lives"}]})  # keys come from the list
    assert not allowed(schema, {"facts": [fact] * (EXTRACTED_FACTS + 1)})
    assert not allowed(schema, {"facts": [{**fact, "content": "x" * (FACT_CHARS + 1)}]})
    assert not allowed(schema, {"facts": [{**fact, "type": "gossip"}]})


def test_the_cap_is_the_longest_answer_the_schema_allows() -> None:
    schema = consolidation_schema([0, 7], [1, 12])
    # the longest: an UPDATE (the only shape with text) of the memory with the longest id, both texts at their bound
    longest = {"decisions": [decision(f, "UPDATE", 12, "x" * FACT_CHARS, "r" * REASON_CHARS) for f in (0, 7)]}
    text = json.dumps(longest, separators=(",", ":"))
    assert allowed(schema, longest) and largest_answer(schema) == len(text)
    assert answer_cap(schema) > len(text)  # one token per character at most, and the whitespace a grammar allows
    assert answer_cap(consolidation_schema([0], [1])) < answer_cap(schema) < answer_cap(extraction_schema()) * 2


def test_a_request_parses_as_leniently_as_its_base_and_sends_its_own_schema() -> None:
    schema = consolidation_schema([0], [1])
    plan = request(ConsolidationPlan, schema)
    assert issubclass(plan, ConsolidationPlan) and plan.__name__ == "ConsolidationPlan"
    assert strict_json_schema(plan) == schema
    # what the schema would refuse still parses: validate_decisions rejects it and says why, as before
    assert plan.model_validate({"decisions": [decision(5, memory_id=9)]}).decisions[0].fact == 5
    assert strict_json_schema(request(FactExtraction, extraction_schema())) == extraction_schema()


def test_openai_gets_the_strict_subset_with_the_enums_kept() -> None:
    strict = openai_strict_subset(consolidation_schema([0, 2], [1, 2]))
    text = json.dumps(strict)
    assert not any(word in text for word in ("maxLength", "minItems", "maxItems", "prefixItems"))
    shapes = strict["properties"]["decisions"]["items"]["anyOf"]  # the tuple's items, any of them
    assert [[s["properties"]["fact"]["enum"] for s in v["anyOf"]] for v in shapes] == [[[0]] * 4, [[2]] * 4]
    assert shapes[0]["anyOf"][1]["properties"]["memory_id"]["enum"] == [1, 2]


def test_reflection_allows_changes_between_two_shown_memories_and_leaves_one() -> None:
    schema = reflection_schema([1, 2, 3])

    def change(memory_id: int, by: int, action: str = "OUTDATE", content: str | None = None,
               reason: str = "moved") -> dict[str, object]:
        return {"memory_id": memory_id, "action": action, "by": by, "content": content, "reason": reason}

    assert allowed(schema, {"changes": []})
    assert allowed(schema, {"changes": [change(1, 3), change(2, 3, "MERGE", "merged")]})
    assert not allowed(schema, {"changes": [change(1, 3)] * 3})  # something always stays
    assert not allowed(schema, {"changes": [change(4, 3)]})  # an id that was not shown
    assert not allowed(schema, {"changes": [change(1, 3, "MERGE", None)]})  # a merge carries its text
    assert not allowed(schema, {"changes": [change(1, 3, "OUTDATE", "text")]})  # an outdate does not
    assert not allowed(schema, {"changes": [change(1, 3, reason="r" * (REASON_CHARS + 1))]})
    assert not allowed(schema, {"changes": [change(1, 3, "DELETE")]})


@pytest.mark.parametrize("schema", [consolidation_schema([0, 2], [1, 3]), extraction_schema(),
                                    reflection_schema([1, 2, 3])])
def test_llama_cpp_turns_each_schema_into_a_grammar(schema: dict[str, object]) -> None:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    grammar = json_schema_to_gbnf(json.dumps(schema))
    assert "root ::=" in grammar
    if "decisions" in schema["properties"]:  # type: ignore[operator]
        assert "tuple-0" in grammar and "tuple-1" in grammar and "tuple-2" not in grammar  # one per fact
