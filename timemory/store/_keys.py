"""API keys for the HTTP API and MCP server (``tm.keys``). A key is shown once when created; the database keeps
only the SHA-256 of its secret (keys are long random strings, so a fast hash is enough)."""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from timemory._validation import check_user_id
from timemory.errors import InvalidInputError, NotFoundError
from timemory.store._database import Database
from timemory.store._models import ApiKeyRow, utcnow
from timemory.store._rows import aware
from timemory.store._users import UserRepository

PREFIX = "tmk"


@dataclass(frozen=True)
class ApiKey:
    id: str
    user_id: str | None
    admin: bool
    label: str | None
    created_at: datetime
    revoked_at: datetime | None = None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key_from(row: ApiKeyRow) -> ApiKey:
    return ApiKey(id=row.id, user_id=row.user_id, admin=bool(row.admin), label=row.label,
                  created_at=aware(row.created_at), revoked_at=aware(row.revoked_at))


class ApiKeys:
    def __init__(self, db: Database, users: UserRepository) -> None:
        self._db = db
        self._users = users

    def create(self, *, user_id: str | None = None, admin: bool = False, label: str | None = None) -> tuple[ApiKey,
                                                                                                            str]:
        """A new key bound to ``user_id``, or an admin key; returns it and its full token (shown only now)."""
        if admin == (user_id is not None):
            raise InvalidInputError("A key is either bound to one user or an admin key.")
        if user_id is not None:
            self._users.ensure(check_user_id(user_id))
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        row = ApiKeyRow(id=key_id, secret_sha256=_digest(secret), user_id=user_id, admin=admin,
                        label=(label or "")[:200] or None, created_at=utcnow())
        with self._db.write() as s:
            s.add(row)
        return _key_from(row), f"{PREFIX}_{key_id}_{secret}"

    def list(self) -> builtins.list[ApiKey]:
        with self._db.read() as s:
            return [_key_from(r) for r in s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))]

    def revoke(self, key_id: str) -> None:
        with self._db.write() as s:
            done = s.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
                             .values(revoked_at=utcnow()))
        if not done.rowcount:  # type: ignore[attr-defined]
            raise NotFoundError(f"No active API key '{key_id}'.")

    def any_active(self) -> bool:
        with self._db.read() as s:
            return bool(s.scalar(select(func.count()).where(ApiKeyRow.revoked_at.is_(None))))

    def verify(self, token: str) -> ApiKey | None:
        """The active key this token is, or None (malformed, unknown, revoked or wrong secret)."""
        parts = str(token).strip().split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or len(parts[1]) > 16:
            return None
        with self._db.read() as s:
            row = s.get(ApiKeyRow, parts[1])
        if row is None or row.revoked_at is not None:
            return None
        return _key_from(row) if hmac.compare_digest(row.secret_sha256, _digest(parts[2])) else None
