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

from timemory.schemas import MEMORY_TYPES, SUBJECTS

EXTRACTED_FACTS = 8  # at most this many facts from one exchange
FACT_CHARS = 240  # an extracted fact, and a merged memory, at most this long
REASON_CHARS = 120


def fact_text(raw: str | None) -> str:
    """A fact or merged memory from a model's answer: whitespace folded, at most :data:`FACT_CHARS` (the schema asks
    for no more; not every server enforces it)."""
    return " ".join((raw or "").split())[:FACT_CHARS]

WHITESPACE_TOKENS = 2  # a grammar allows a little whitespace at each joint of the JSON text (llama.cpp: 22 chars)

T = TypeVar("T", bound=pydantic.BaseModel)


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def extraction_schema() -> dict[str, Any]:
    fact = _object({"content": {"type": "string", "maxLength": FACT_CHARS},
                    "type": {"type": "string", "enum": list(MEMORY_TYPES)},
                    "subject": {"anyOf": [{"type": "string", "enum": list(SUBJECTS)}, {"type": "null"}]}})
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


def reflection_schema(shown: Sequence[int]) -> dict[str, Any]:
    """At most one change per memory but one (something must stay); each names two different shown memories and
    only MERGE carries text."""
    text = {"type": "string", "maxLength": FACT_CHARS}
    reason = {"type": "string", "maxLength": REASON_CHARS}
    memory = {"type": "integer", "enum": list(shown)}

    def shape(action: str, content: dict[str, Any]) -> dict[str, Any]:
        return _object({"memory_id": memory, "action": {"type": "string", "enum": [action]}, "by": memory,
                        "content": content, "reason": reason})

    change = {"anyOf": [shape("OUTDATE", {"type": "null"}), shape("MERGE", text)]}
    return _object({"changes": {"type": "array", "items": change, "maxItems": max(0, len(shown) - 1)}})


def request(base: type[T], schema: dict[str, Any]) -> type[T]:
    """``base`` as the parser reads answers (leniently), sending ``schema`` as the JSON schema of the request."""
    frozen = copy.deepcopy(schema)
    return type(base.__name__, (base,), {  # type: ignore[return-value]
        "__module__": base.__module__,
        "model_json_schema": classmethod(lambda cls, *args, **kwargs: copy.deepcopy(frozen)),
    })


def _bounds(schema: Any) -> tuple[int, int]:
    """(characters of the longest JSON text ``schema`` allows, places in it where a grammar allows whitespace).
    Strings count at their maxLength, arrays at maxItems, unbounded integers at 20 digits; a choice counts its
    largest branch for each figure."""
    if schema is False:
        return 0, 0
    if "anyOf" in schema:
        branches = [_bounds(s) for s in schema["anyOf"]]
        return max(c for c, _ in branches), max(j for _, j in branches)
    if "enum" in schema:
        return max(len(json.dumps(v)) for v in schema["enum"]), 0
    kind = schema.get("type")
    if kind == "object":  # {"key": value, ...}: whitespace around the braces, each colon and each value
        props = [(len(json.dumps(k)), _bounds(v)) for k, v in schema.get("properties", {}).items()]
        chars = 2 + sum(key + 1 + c for key, (c, _) in props) + max(0, len(props) - 1)
        return chars, 2 + sum(2 + j for _, (_, j) in props)
    if kind == "array":  # [item, ...]: the tuple's items, then further items up to maxItems
        items = list(schema.get("prefixItems", []))
        items += [schema.get("items", {})] * max(0, schema.get("maxItems", len(items)) - len(items))
        sizes = [_bounds(i) for i in items]
        return 2 + sum(c for c, _ in sizes) + max(0, len(sizes) - 1), 2 + sum(1 + j for _, j in sizes)
    if kind == "string":
        return 2 + int(schema.get("maxLength", 1_000)), 0
    return {"integer": 20, "null": 4, "boolean": 5}.get(kind, 1_000), 0


def largest_answer(schema: Any) -> int:
    """Characters of the longest JSON text ``schema`` allows, without optional whitespace."""
    return _bounds(schema)[0]


def answer_cap(schema: dict[str, Any]) -> int:
    """A token cap no valid answer reaches: one token per character of the largest answer (a token never holds less
    than one character of ASCII text) and the whitespace the grammar allows at each joint."""
    chars, joints = _bounds(schema)
    return chars + WHITESPACE_TOKENS * joints
