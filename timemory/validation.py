"""Input checks shared by the engine and the store: one place, one wording for every refusal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .errors import ValidationError
from .schemas import MEMORY_STATUSES, MEMORY_TYPES, SEARCH_MODES, SearchMode

MAX_USER_ID = 128


def check_user_id(user_id: Any) -> str:
    if not isinstance(user_id, str) or not user_id.strip():
        raise ValidationError("user_id must be a non-empty string.")
    if len(user_id) > MAX_USER_ID:
        raise ValidationError(f"user_id is longer than {MAX_USER_ID} characters.")
    return user_id


def check_type(type_: str) -> str:
    if type_ not in MEMORY_TYPES:
        raise ValidationError(f"Unknown memory type '{type_}'. Use one of: {', '.join(MEMORY_TYPES)}.")
    return type_


def check_status(status: str) -> str:
    if status not in MEMORY_STATUSES:
        raise ValidationError(f"Unknown status '{status}'. Use one of: {', '.join(MEMORY_STATUSES)}.")
    return status


def check_search_mode(mode: str) -> SearchMode:
    if mode not in SEARCH_MODES:
        raise ValidationError(f"Unknown search mode '{mode}': use hybrid, vector or keyword.")
    return mode  # type: ignore[return-value]


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
        raise ValidationError(f"{what} must be text, not {type(content).__name__}.")
    content = content.strip()
    if not content:
        raise ValidationError(f"{what} is empty.")
    if len(content) > max_chars:
        raise ValidationError(
            f"{what} is {len(content):,} characters; the limit is {max_chars:,} (TIMEMORY_MAX_CONTENT_CHARS)."
        )
    try:
        content.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(f"{what} is not valid Unicode text (character {exc.start}); decode it first.") from exc
    return content
