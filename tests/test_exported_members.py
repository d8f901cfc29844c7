"""What ``timemory`` offers is pinned: adding or removing a public name is a decision, made here on purpose. And one
word names one thing: no two classes share a name, and the retired names stay retired."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import timemory

ROOT = Path(__file__).resolve().parents[1]
CODE = [ROOT / "streamlit_app.py", *(p for d in ("timemory", "dashboard", "pages") for p in (ROOT / d).rglob("*.py"))]

PUBLIC = [
    "CandidatePolicy", "ChatError", "ChatExchange", "ChatService", "ChatSession", "ConcurrentUpdateError",
    "ConfigurationError", "ConflictError", "ConsolidationPlan", "DatabaseError", "Decision", "EmbeddingError",
    "EmbeddingMismatchError", "ErasedUserError", "Episode", "Experiment", "ExtractedFact", "FactExtraction",
    "GivenPolicy",
    "InvalidInputError", "Job", "JobLease", "Judgement", "LLMError", "LLMOutputError", "LearntMemory",
    "LeaseLostError", "MEMORY_STATUSES", "MEMORY_TYPES", "Memory", "MemoryEdit", "MemoryEvent", "MemoryFilter",
    "Message", "MissingExtraError", "NewMessage", "NotFoundError", "PipelineResult", "ReflectionPlan",
    "ReflectionReport", "RunDiff",
    "SEARCH_MODES", "SEARCH_SCOPES", "SUBJECTS", "ScoreBreakdown", "SearchHit", "SearchMode", "SearchScope",
    "Settings", "TiMem", "TiMemoryError", "UserStats",
]
# Names that meant two things (or a thing under another word) before the glossary (README, "Words").
RETIRED = ["ChatTurn", "memories_used", "UserSummary", "candidate_memories", "run_pipeline", "search_for",
           "episodes_for", "replay_events", "TurnState"]


def test_the_public_names_are_pinned() -> None:
    assert sorted(timemory.__all__) == sorted(PUBLIC)
    assert all(hasattr(timemory, name) for name in PUBLIC)


def test_the_former_name_of_invalid_input_still_imports() -> None:
    from timemory import ValidationError

    assert ValidationError is timemory.InvalidInputError and "ValidationError" not in timemory.__all__


def classes(paths: list[Path]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                found[node.name].append(f"{path.name}:{node.lineno}")
    return found


def test_no_two_classes_share_a_name() -> None:
    found = classes(CODE)
    assert len(found) > 100
    assert {name: where for name, where in found.items() if len(where) > 1} == {}


def test_the_class_check_sees_a_repeated_name(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("class Engine:\n    pass\n")
    (tmp_path / "b.py").write_text("from typing import Protocol\n\n\nclass Engine(Protocol):\n    pass\n")
    assert classes([tmp_path / "a.py", tmp_path / "b.py"])["Engine"] == ["a.py:1", "b.py:4"]


def test_retired_names_are_not_used() -> None:
    words = re.compile(r"\b(" + "|".join(RETIRED) + r")\b")
    used = {str(p.relative_to(ROOT)): sorted(set(words.findall(p.read_text(encoding="utf-8")))) for p in CODE}
    assert {path: names for path, names in used.items() if names} == {}
