"""Time words resolved by code against the day they were said (``timemory._dates``), on a labelled list."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from timemory._dates import find_when

LABELLED = Path(__file__).resolve().parents[1] / "bench" / "data" / "time_expressions.tsv"
REQUIRED = 0.95


def labelled() -> list[tuple[date, str, tuple[date | None, date | None] | None]]:
    rows = []
    for line in LABELLED.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        anchor, text, start, end = line.split("\t")
        day = lambda s: date.fromisoformat(s) if s else None  # noqa: E731
        rows.append((date.fromisoformat(anchor), text, None if start == "none" else (day(start), day(end))))
    return rows


def resolved(anchor: date, text: str) -> tuple[date | None, date | None] | None:
    when = find_when(text, anchor)
    return None if when is None else (when.start, when.end)


def test_the_labelled_list_is_large_and_varied() -> None:
    rows = labelled()
    assert len(rows) >= 150
    assert len({a for a, _, _ in rows}) >= 5 and sum(r is None for _, _, r in rows) >= 10


def test_the_resolver_gets_at_least_95_percent_of_the_labelled_list_right() -> None:
    rows = labelled()
    wrong = [(a.isoformat(), t, want, resolved(a, t)) for a, t, want in rows if resolved(a, t) != want]
    assert 1 - len(wrong) / len(rows) >= REQUIRED, "\n".join(map(str, wrong))


@pytest.mark.parametrize(("text", "words"), [
    ("The user adopted a dog last Saturday.", "last Saturday"),
    ("The user has lived in Oslo since 2015.", "since 2015"),
    ("The user studied in Lyon from 2010 until 2014.", "from 2010 until 2014"),
])
def test_the_words_a_range_came_from_are_kept(text: str, words: str) -> None:
    when = find_when(text, date(2023, 5, 8))
    assert when is not None and when.words == words


def test_a_fact_with_no_time_words_keeps_nulls() -> None:
    assert find_when("The user likes jazz and plays the cello.", date(2023, 5, 8)) is None
    assert find_when("", date(2023, 5, 8)) is None and find_when(None, date(2023, 5, 8)) is None
