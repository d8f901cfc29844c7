"""The answers the model may give, bounded per request.

Each structured call sends a JSON schema made for that request: the extraction allows a bounded number of facts of
bounded length; the consolidation allows exactly one decision per fact asked about, in order (``prefixItems``), each
in the shape of its action (only UPDATE carries text; ADD names no memory, the others one that was shown) with
bounded texts. A server that enforces the
schema with a grammar (llama.cpp) cannot let a looping model run on, and the answer's token cap is derived from the
largest answer the schema allows, so a valid answer is never cut. The answer is still parsed leniently and every
decision validated (``consolidation.validate_decisions``): a server that does not enforce the schema changes nothing
about what is safe to apply.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any, TypeVar

import pydantic

from timemory.schemas import MEMORY_TYPES, ConsolidationPlan, FactExtraction

EXTRACTED_FACTS = 8  # at most this many facts from one exchange
FACT_CHARS = 240  # an extracted fact, and a merged memory, at most this long
REASON_CHARS = 120
WHITESPACE_TOKENS = 2  # a grammar allows a little whitespace at each joint of the JSON text (llama.cpp: 22 chars)

T = TypeVar("T", bound=pydantic.BaseModel)


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def extraction_schema() -> dict[str, Any]:
    fact = _object({"content": {"type": "string", "maxLength": FACT_CHARS},
                    "type": {"type": "string", "enum": list(MEMORY_TYPES)}})
    return _object({"facts": {"type": "array", "items": fact, "maxItems": EXTRACTED_FACTS}})


def consolidation_schema(asked: Sequence[int], shown: Sequence[int]) -> dict[str, Any]:
    """One decision per fact in ``asked``, in that order. Each is one of the action's own shapes: ADD names no memory;
    UPDATE names a shown memory and carries the merged text; OUTDATE and NONE name a shown memory."""
    text = {"type": "string", "maxLength": FACT_CHARS}
    reason = {"type": "string", "maxLength": REASON_CHARS}
    memory = {"type": "integer", "enum": list(shown)}
    null = {"type": "null"}

    def shape(fact: int, action: str, memory_id: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
        return _object({"fact": {"type": "integer", "enum": [fact]}, "action": {"type": "string", "enum": [action]},
                        "memory_id": memory_id, "content": content, "reason": reason})

    def one_decision(fact: int) -> dict[str, Any]:
        shapes = [shape(fact, "ADD", null, null)]
        if shown:
            shapes += [shape(fact, "UPDATE", memory, text), shape(fact, "OUTDATE", memory, null),
                       shape(fact, "NONE", memory, null)]
        return {"anyOf": shapes}

    decisions = [one_decision(fact) for fact in asked]
    return _object({"decisions": {"type": "array", "prefixItems": decisions, "items": False,
                                  "minItems": len(decisions), "maxItems": len(decisions)}})


def request(base: type[T], schema: dict[str, Any]) -> type[T]:
    """``base`` as the parser reads answers (leniently), sending ``schema`` as the JSON schema of the request."""
    frozen = copy.deepcopy(schema)
    return type(base.__name__, (base,), {  # type: ignore[return-value]
        "__module__": base.__module__,
        "model_json_schema": classmethod(lambda cls, *args, **kwargs: copy.deepcopy(frozen)),
    })


def extraction_request() -> type[FactExtraction]:
    return request(FactExtraction, extraction_schema())


def consolidation_request(asked: Sequence[int], shown: Sequence[int]) -> type[ConsolidationPlan]:
    return request(ConsolidationPlan, consolidation_schema(asked, shown))


def largest_answer(schema: Any) -> int:
    """Characters of the longest JSON text ``schema`` allows (strings at their maxLength, arrays at maxItems,
    unbounded integers at 20 digits), without optional whitespace."""
    if schema is False:
        return 0
    if "anyOf" in schema:
        return max(largest_answer(s) for s in schema["anyOf"])
    if "enum" in schema:
        return max(len(json.dumps(v)) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return 2 + sum(len(json.dumps(k)) + 1 + largest_answer(v) for k, v in props.items()) + max(0, len(props) - 1)
    if kind == "array":
        items = [largest_answer(s) for s in schema.get("prefixItems", [])]
        extra = schema.get("maxItems", len(items)) - len(items)
        if extra > 0:
            items += [largest_answer(schema.get("items", {}))] * extra
        return 2 + sum(items) + max(0, len(items) - 1)
    if kind == "string":
        return 2 + int(schema.get("maxLength", 1_000))
    if kind == "integer":
        return 20
    if kind == "null":
        return 4
    if kind == "boolean":
        return 5
    return 1_000


def _joints(schema: Any) -> int:
    """Places in the longest answer where a grammar allows whitespace (around braces, brackets, colons, commas)."""
    if schema is False:
        return 0
    if "anyOf" in schema:
        return max(_joints(s) for s in schema["anyOf"])
    if schema.get("type") == "object":
        return 2 + sum(2 + _joints(v) for v in schema.get("properties", {}).values())
    if schema.get("type") == "array":
        items = list(schema.get("prefixItems", []))
        items += [schema.get("items", {})] * max(0, schema.get("maxItems", len(items)) - len(items))
        return 2 + sum(1 + _joints(i) for i in items)
    return 0


def answer_cap(schema: dict[str, Any]) -> int:
    """A token cap no valid answer reaches: one token per character of the largest answer (a token never holds less
    than one character of ASCII text) and the whitespace the grammar allows at each joint."""
    return largest_answer(schema) + WHITESPACE_TOKENS * _joints(schema)
