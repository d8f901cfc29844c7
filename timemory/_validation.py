"""Input checks shared by the engine and the store: one place, one wording for every refusal; and the one
filter object the listings share."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from timemory.errors import InvalidInputError
from timemory.schemas import MEMORY_STATUSES, MEMORY_TYPES, SEARCH_MODES, SEARCH_SCOPES, SearchMode, SearchScope

MAX_USER_ID = 128
# A user id is safe in a URL path, a file name, a log line and a shell argument: letters, digits and ._@:+=-,
# starting with a letter, a digit or _.
USER_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@:+=-]*")


def check_user_id(user_id: Any) -> str:
    """A user id of the grammar :data:`USER_ID`, at most :data:`MAX_USER_ID` characters."""
    check_stored_user_id(user_id)
    if not USER_ID.fullmatch(user_id):
        raise InvalidInputError(f"user_id {user_id[:40]!r} has characters a user id cannot have: use letters, digits "
                              "and . _ @ : + = - (starting with a letter, a digit or _).")
    return str(user_id)


def check_stored_user_id(user_id: Any) -> str:
    """The looser rule of ids stored before the grammar: a user created then can still be listed and erased."""
    if not isinstance(user_id, str) or not user_id.strip():
        raise InvalidInputError("user_id must be a non-empty string.")
    if len(user_id) > MAX_USER_ID:
        raise InvalidInputError(f"user_id is longer than {MAX_USER_ID} characters.")
    return user_id


def check_type(type_: str) -> str:
    if type_ not in MEMORY_TYPES:
        raise InvalidInputError(f"Unknown memory type '{type_}'. Use one of: {', '.join(MEMORY_TYPES)}.")
    return type_


def check_status(status: str) -> str:
    if status not in MEMORY_STATUSES:
        raise InvalidInputError(f"Unknown status '{status}'. Use one of: {', '.join(MEMORY_STATUSES)}.")
    return status


def check_search_mode(mode: str) -> SearchMode:
    if mode not in SEARCH_MODES:
        raise InvalidInputError(f"Unknown search mode '{mode}': use hybrid, vector or keyword.")
    return mode  # type: ignore[return-value]


def check_search_scope(scope: str) -> SearchScope:
    if scope not in SEARCH_SCOPES:
        raise InvalidInputError(f"Unknown search scope '{scope}': use memories, episodes or all.")
    return scope  # type: ignore[return-value]


def check_each(values: Sequence[str] | str | None, check: Callable[[str], str]) -> list[str] | None:
    """A filter list (a single string counts as one value); None means no filter."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    return [check(v) for v in values]


def check_content(content: Any, max_chars: int, what: str = "content") -> str:
    """Stripped, non-empty text within the configured limit."""
    if not isinstance(content, str):
        raise InvalidInputError(f"{what} must be text, not {type(content).__name__}.")
    content = content.strip()
    if not content:
        raise InvalidInputError(f"{what} is empty.")
    if len(content) > max_chars:
        raise InvalidInputError(
            f"{what} is {len(content):,} characters; the limit is {max_chars:,} (TIMEMORY_MAX_CONTENT_CHARS)."
        )
    try:
        content.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{what} is not valid Unicode text (character {exc.start}); decode it first.") from exc
    return content


@dataclass(frozen=True)
class MemoryFilter:
    """Which of a user's memories a listing, count or map shows. Frozen and hashable, so it can key a cache.

    Build it with :meth:`of`, which checks every value; ``None`` means "no condition"."""

    types: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    text: str | None = None
    session_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def of(
        cls,
        *,
        types: Sequence[str] | str | None = None,
        statuses: Sequence[str] | str | None = None,
        text: str | None = None,
        session_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> MemoryFilter:
        checked_types, checked_statuses = check_each(types, check_type), check_each(statuses, check_status)
        return cls(types=tuple(checked_types) if checked_types is not None else None,
                   statuses=tuple(checked_statuses) if checked_statuses is not None else None,
                   text=text or None, session_id=session_id, since=since, until=until)
