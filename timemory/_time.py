"""Times inside TiMemory are aware and in UTC; a naive time from outside is read as UTC (this is the one place
that says so)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware time: a naive one is taken to be UTC, an aware one is kept as it is."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def utc_now() -> datetime:
    return datetime.now(UTC)
