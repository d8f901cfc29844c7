"""The Timeline's moment (named by a link, stepped from change to change) and the memory browser's "created between"
dates, on moments counted by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dashboard import moments

A, B, C = (datetime(2024, 5, d, 12, 0, tzinfo=UTC) for d in (1, 8, 20))
CHANGES = [A, B, C]


def test_the_span_is_the_first_and_last_change_at_least_a_minute_apart() -> None:
    assert moments.span(CHANGES) == (A, C)
    assert moments.span([A]) == (A, A + timedelta(minutes=1))
    assert moments.span([A, A + timedelta(seconds=10)]) == (A, A + timedelta(minutes=1))


def test_stepping_goes_to_the_change_before_or_after_and_stops_at_either_end() -> None:
    first, last = moments.span(CHANGES)
    assert moments.step(CHANGES, C, -1, first, last) == B
    assert moments.step(CHANGES, B, -1, first, last) == A
    assert moments.step(CHANGES, A, -1, first, last) == A  # nothing before the first change
    assert moments.step(CHANGES, A, 1, first, last) == B
    assert moments.step(CHANGES, B + timedelta(days=1), 1, first, last) == C  # between two changes: the next one
    assert moments.step(CHANGES, B + timedelta(days=1), -1, first, last) == B
    assert moments.step(CHANGES, C, 1, first, last) == C
    assert moments.step(CHANGES, B.replace(tzinfo=None), 1, first, last) == C  # the slider's naive time is UTC


def test_a_linked_moment_is_kept_inside_the_span_and_a_bad_link_shows_the_latest() -> None:
    assert moments.linked(B.isoformat(), A, C) == B
    assert moments.linked("2024-05-08T12:00:00", A, C) == B  # no zone: UTC
    assert moments.linked("2020-01-01T00:00:00+00:00", A, C) == A
    assert moments.linked("2030-01-01T00:00:00+00:00", A, C) == C
    assert moments.linked("yesterday", A, C) == C and moments.linked(None, A, C) == C and moments.linked("", A, C) == C


def test_created_between_covers_both_days_whole() -> None:
    since, until = moments.created_between((date(2024, 5, 1), date(2024, 5, 2)))
    assert since == datetime(2024, 5, 1, tzinfo=UTC)
    assert until == datetime(2024, 5, 2, 23, 59, 59, 999999, tzinfo=UTC)
    assert moments.created_between(date(2024, 5, 1)) == (datetime(2024, 5, 1, tzinfo=UTC), None)
    assert moments.created_between(()) == (None, None)
    assert moments.created_between((date(2024, 5, 1),)) == (None, None)  # the range's second day not picked yet
    assert moments.created_between(None) == (None, None)


def test_a_session_label_has_one_date() -> None:
    assert moments.session_label("Trip to Lisbon", A) == "Trip to Lisbon · 2024-05-01"
    replayed = "Knee pain and the move · 2026-11-13 14:53"  # a replay names its sessions with their own date
    assert moments.session_label(replayed, A) == replayed
    assert moments.session_label("Notes · 2026-11-13", A) == "Notes · 2026-11-13"
