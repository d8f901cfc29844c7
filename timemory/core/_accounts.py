"""Users and their chat sessions, as the :class:`~timemory.TiMem` facade offers them (``tm.users``, ``tm.sessions``).

Every call names the user by keyword; a session or message of another user is reported as not found.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from timemory._validation import check_stored_user_id, check_user_id
from timemory.errors import InvalidInputError
from timemory.schemas import ChatSession, Message, NewMessage, UserStats
from timemory.store import Store

DEFAULT_TITLE = "New chat"


class Users:
    def __init__(self, store: Store) -> None:
        self._store = store

    def list(self) -> list[UserStats]:
        """Every user, with counts of sessions and active / outdated memories."""
        return self._store.users.list()

    def ensure(self, *, user_id: str) -> None:
        """Create the user if it does not exist yet, on purpose: a user erased before is created again (every other
        write for an erased user is refused with ErasedUserError)."""
        self._store.users.ensure(check_user_id(user_id), on_purpose=True)

    def erased(self, *, user_id: str) -> bool:
        """Whether the user was erased and not created again since."""
        return self._store.users.erased(check_user_id(user_id))

    def use(self, *, user_id: str) -> None:
        """Create the user on first use, as any write does: an erased user stays erased (ErasedUserError)."""
        self._store.users.ensure(check_user_id(user_id))

    def delete(self, *, user_id: str) -> dict[str, int]:
        """Erase the user: every row they own (memories, history, sessions, messages, summaries, runs, jobs, API
        keys), the cached model answers of their runs and their records in experiments; nothing is kept. Returns the
        rows removed per table."""
        return self._store.erasure.user(check_stored_user_id(user_id))

    def version(self, *, user_id: str) -> int:
        """A number that moves on every change to the user's memories (caches are keyed by it)."""
        return self._store.users.version(check_user_id(user_id))


class Sessions:
    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, *, user_id: str, title: str = DEFAULT_TITLE, created_at: datetime | None = None) -> ChatSession:
        return self._store.conversations.create_session(check_user_id(user_id), title, created_at)

    def get(self, session_id: str, *, user_id: str) -> ChatSession:
        return self._store.conversations.get_session(check_user_id(user_id), session_id)

    def list(self, *, user_id: str) -> list[ChatSession]:
        """The user's sessions, most recently active first."""
        return self._store.conversations.list_sessions(check_user_id(user_id))

    def find(self, title: str, *, user_id: str) -> ChatSession | None:
        return self._store.conversations.find_session(check_user_id(user_id), title)

    def rename(self, session_id: str, *, user_id: str, title: str) -> ChatSession:
        if not str(title).strip():
            raise InvalidInputError("A session title cannot be empty.")
        return self._store.conversations.rename_session(check_user_id(user_id), session_id, title)

    def delete(self, session_id: str, *, user_id: str) -> None:
        """Delete the session and its messages; memories learnt from it stay (their provenance keeps the ids)."""
        self._store.conversations.delete_session(check_user_id(user_id), session_id)

    def messages(self, session_id: str, *, user_id: str, limit: int | None = None) -> builtins.list[Message]:
        """The session's messages in order; with ``limit``, only the last ``limit``. Another user's session (or
        none) is not found, rather than empty."""
        self.get(session_id, user_id=user_id)
        return self._store.conversations.list_messages(user_id, session_id, limit)

    def add_messages(self, messages: Sequence[NewMessage | dict[str, Any]], *, user_id: str,
                     session_id: str | None) -> builtins.list[Message]:
        """Store messages (``role``, ``content``, optional ``id`` and ``created_at``); a message id the user already
        has is kept as it is."""
        given = [m if isinstance(m, NewMessage) else NewMessage.model_validate(m) for m in messages]
        return self._store.conversations.save_messages(check_user_id(user_id), session_id, given)


def in_reply_order(messages: Sequence[Message]) -> list[Message]:
    """A session's messages with each assistant reply right after the user message it answers.

    Replies of a session are given in the order the messages were sent, but a second message sent before the first
    was answered is stored before that answer: stored order reads question 1, question 2, reply 1, reply 2. Here the
    k-th reply after a run of user messages goes under the k-th of them that is still unanswered.
    """
    out: list[Message] = []
    waiting: list[int] = []  # positions in ``out`` of user messages not answered yet, oldest first
    for m in messages:
        if m.role == "user":
            waiting.append(len(out))
            out.append(m)
        elif m.role == "assistant" and waiting:
            at = waiting.pop(0) + 1
            while at < len(out) and out[at].role == "assistant":  # after the replies already under it
                at += 1
            out.insert(at, m)
            waiting = [w + 1 if w >= at else w for w in waiting]
        else:
            out.append(m)
    return out
