"""Errors a person can act on: each has a stable code and a message that says what to do."""

from __future__ import annotations


class TiMemoryError(Exception):
    """Base class. ``code`` is stable and machine-readable; ``str(err)`` is for people."""

    code = "timemory_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigurationError(TiMemoryError):
    code = "configuration"


class MissingExtraError(ConfigurationError):
    """A feature whose optional dependencies (one of the package's extras) are not installed."""

    code = "missing_extra"

    def __init__(self, feature: str, extra: str, module: str, *, hint: str = "") -> None:
        super().__init__(
            f"{feature} needs the optional '{extra}' dependencies ({module} is not installed): "
            f'pip install "timemory[{extra}]"' + (f". {hint}" if hint else "")
        )
        self.feature = feature
        self.extra = extra
        self.module = module


class InvalidInputError(TiMemoryError):
    """The caller passed something the engine refuses (empty text, unknown type, too long...)."""

    code = "invalid_input"


class NotFoundError(TiMemoryError):
    """The id does not exist for this user (ids of other users are reported the same way)."""

    code = "not_found"


class ErasedUserError(TiMemoryError):
    """The user was erased: nothing is written for that id again unless a person re-creates the user on purpose
    (``tm.users.ensure``, or "New user" in the dashboard)."""

    code = "erased"


class ConflictError(TiMemoryError):
    """The memory changed since the caller read it (an edit made on a stale view is refused, never misapplied)."""

    code = "conflict"


class LeaseLostError(ConflictError):
    """A worker's hold on a job ran out and another worker took it: this worker's writes were rolled back."""

    code = "lease_lost"


class DatabaseError(TiMemoryError):
    code = "database"


class EmbeddingMismatchError(DatabaseError):
    """The database holds vectors from another embedding model or dimension."""

    code = "embedding_mismatch"


class ConcurrentUpdateError(DatabaseError):
    """Another writer changed this user's memories while a consolidation was being planned."""

    code = "concurrent_update"


class LLMError(TiMemoryError):
    """The language model could not be reached or did not answer usefully."""

    code = "llm"


class LLMOutputError(LLMError):
    """The model answered, but not with output matching the requested schema (after one repair)."""

    code = "llm_output"


class EmbeddingError(TiMemoryError):
    code = "embedding"


class ChatError(LLMError):
    code = "chat"


# The former name of InvalidInputError (it read like pydantic's own ValidationError); kept so older code still runs.
ValidationError = InvalidInputError
