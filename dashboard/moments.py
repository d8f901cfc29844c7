"""Moments and spans the pages pick, without Streamlit: the Timeline's moment (from a link, stepped from change to
change) and the memory browser's "created between" dates."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

MIN_SPAN = timedelta(minutes=1)  # the Timeline's slider needs a span, also when everything changed at one moment


def aware(at: datetime) -> datetime:
    """``at`` with a time zone: one without is taken as UTC (the slider hands back naive datetimes)."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def span(changes: Sequence[datetime]) -> tuple[datetime, datetime]:
    """The slider's first and last moment: the first and last change, at least :data:`MIN_SPAN` apart."""
    first, last = min(changes), max(changes)
    return first, max(last, first + MIN_SPAN)


def linked(value: str | None, first: datetime, last: datetime) -> datetime:
    """The moment a link names (ISO, ``?at=``), kept between ``first`` and ``last``; ``last`` when it names none."""
    try:
        at = aware(datetime.fromisoformat(value or ""))
    except ValueError:
        at = last
    return min(max(at, first), last)


def step(changes: Sequence[datetime], now: datetime, direction: int, first: datetime, last: datetime) -> datetime:
    """The change before ``now`` (``direction`` < 0; ``first`` when there is none) or after it (``last`` then)."""
    now = aware(now)
    if direction < 0:
        return max((c for c in changes if c < now), default=first)
    return min((c for c in changes if c > now), default=last)


def created_between(picked: object) -> tuple[datetime | None, datetime | None]:
    """The date input's pick as a (since, until) span in UTC: two dates cover both days whole; one date (while the
    a single date is "since that day"; anything else (nothing picked, or only the first day of a range so far) is no
    condition."""
    if isinstance(picked, tuple | list) and len(picked) == 2:
        return datetime.combine(picked[0], time.min, tzinfo=UTC), datetime.combine(picked[1], time.max, tzinfo=UTC)
    if isinstance(picked, date):
        return datetime.combine(picked, time.min, tzinfo=UTC), None
    return None, None


_DATED = re.compile(r" · \d{4}-\d{2}-\d{2}( \d{2}:\d{2})?$")


def session_label(title: str, updated_at: datetime) -> str:
    """A session as the picker lists it, with one date: a replayed session's title carries its own date already."""
    return title if _DATED.search(title) else f"{title} · {updated_at:%Y-%m-%d}"
